import os


def test_harness_keeps_ros_on_this_machine():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 1 <= int(os.environ["ROS_DOMAIN_ID"]) <= 101
    assert os.path.isdir(os.environ["ROS_LOG_DIR"])
