"""Test harness: every test process keeps ROS 2 traffic on this machine and in its own domain.

Set before anything imports rclpy (pytest imports conftest.py first), so no test can forget it.
"""
import os
import tempfile

# DDS discovery must never leave this machine (ENVIRONMENT.md).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)
# A domain id of this run's own (0-101 are valid for Fast DDS on one host): parallel runs stay apart.
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
# Node logs go to a temporary folder, not ~/.ros/log.
os.environ["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="ros2_pose_test_logs_")

# rclpy fixtures (own Context per test, executor, spin helpers) for every test folder; loaded after
# the environment above is set.
pytest_plugins = ["ros_fixtures", "model_fixtures"]
