"""Training: shared loop, configs and run directories; one module per task in `tasks`."""
