"""ros2_pose: camera-based pose estimation for ROS 2.

The core (geometry, data, models, ...) imports no rclpy; ROS glue lives in `ros2_pose.ros`
and the nodes in `ros2_pose.nodes`.
"""

__version__ = "0.1.0"
