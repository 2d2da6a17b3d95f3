"""One module per `ros2-pose eval <task>`: add_arguments(parser), run(args)."""
