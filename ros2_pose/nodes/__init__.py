"""Thin ROS 2 nodes: each module is a node executable of the same name (console script via setup.py)."""
