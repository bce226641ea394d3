"""Estimator adapters: ONNX Runtime models and plain user classes."""
