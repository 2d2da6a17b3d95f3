"""Synthetic scenes: meshes, headless rendering, domain randomisation, per-task scene generators."""

# Bump whenever rendering or bag writing changes what a (task, seed) renders to: cached sample bags
# and held-out sets rendered under another version are rendered again.
RENDER_VERSION = 6
