"""One module per `ros2-pose train <task>`: add_arguments(parser), run(args)."""
