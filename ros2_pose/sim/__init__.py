"""Synthetic scenes: meshes, headless rendering, domain randomisation, per-task scene generators."""
