"""Federated learning of handwritten digits across three simulated edge nodes."""
