"""Configuration, plug-in registry, errors and logging shared by every part of the SDK."""
