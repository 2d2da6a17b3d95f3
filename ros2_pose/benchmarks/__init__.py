"""Benchmarks: one module per `ros2-pose bench <target>`, each with add_arguments(parser) and run(args)."""
