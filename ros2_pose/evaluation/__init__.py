"""Metrics and evaluation reports; one module per task in `tasks`."""
