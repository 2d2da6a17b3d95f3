"""Training losses shared by several models (torch)."""
