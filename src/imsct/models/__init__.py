"""Neural networks (PyTorch). Inference does not need this package: it runs the ONNX export."""
