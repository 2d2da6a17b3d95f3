"""ROS-free geometry: camera model, rigid transforms and rotations, ROI crop."""
