"""Starting node graphs from config/graphs/*.yaml without ros2 launch (`ros2-pose up`)."""
