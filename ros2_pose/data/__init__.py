"""Bags, recording, synchronisation and datasets on disk."""
