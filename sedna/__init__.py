"""Sedna-py: the SDK that edge and cloud workers import.

Importing ``sedna`` is cheap: heavy dependencies (onnxruntime, grpc, kubernetes,
paho-mqtt) are imported by the modules that need them, never here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
