"""Target codecs: keypoints <-> heatmaps (encoding for training targets, decoding for inference)."""
