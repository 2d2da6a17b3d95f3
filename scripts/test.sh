#!/usr/bin/env bash
# Runs ros2_pose's test suite inside the set-up environment. Extra arguments go to pytest.
# The harness (test/conftest.py) sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a ROS_DOMAIN_ID of
# its own and ROS_LOG_DIR in a temporary folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/activate.sh
exec python -m pytest "$@"
