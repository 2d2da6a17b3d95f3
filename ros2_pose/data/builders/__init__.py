"""Task dataset builders: bags -> datasets on disk (one module per task)."""
