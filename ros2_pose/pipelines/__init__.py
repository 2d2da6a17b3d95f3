"""ROS-free inference pipelines: image + camera in, poses out. Nodes, evaluation and benchmarks all
run these, so what is measured offline is what runs on the robot."""
