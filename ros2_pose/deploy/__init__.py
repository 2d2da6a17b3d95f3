"""Deployment: one runner for torch / onnxruntime / tensorrt, ONNX export, TensorRT engines."""
