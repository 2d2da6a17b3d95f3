"""What `ros2-pose demo` shows a person: a sample bag replayed through the real nodes.

- `dolly_replay` (rclpy): the dolly graph (config/graphs/dolly.yaml) in this process with a
  `BagPlayer` and a collector on one executor; returns what the node published, frame by frame,
  next to the bag's ground truth.
- `dolly_report` (ROS-free): per-frame lines, Table-1 metrics (through ros2_pose.evaluation.dolly).
- `dolly_overlay` (ROS-free): estimated and ground-truth boxes and axes drawn on the frames, an MP4
  and a PNG contact sheet.
- `fixed_output_models` (ROS-free, torch): dolly networks of the shipped architectures whose heads
  give a fixed answer, for proof-of-life node tests and architecture benchmarks without trained models.
"""
