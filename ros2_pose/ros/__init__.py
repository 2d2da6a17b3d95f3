"""ROS 2 glue (imports rclpy): message conversion, TF, QoS, the lifecycle node base, diagnostics."""
