"""Federated learning examples."""
