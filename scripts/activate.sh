# Source me: activates ros2_pose's virtual environment and its colcon workspace.
#   source scripts/activate.sh
_ros2_pose_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
# shellcheck disable=SC1091
source "$_ros2_pose_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
if [ -f "$_ros2_pose_root/install/local_setup.bash" ]; then
  # colcon's setup scripts read unset variables; relax nounset while sourcing them.
  _ros2_pose_had_u=0; case $- in *u*) _ros2_pose_had_u=1; set +u;; esac
  # shellcheck disable=SC1091
  source "$_ros2_pose_root/install/local_setup.bash"
  [ "$_ros2_pose_had_u" = 1 ] && set -u
fi
# DDS discovery stays on this machine unless the caller chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
unset _ros2_pose_root _ros2_pose_had_u
