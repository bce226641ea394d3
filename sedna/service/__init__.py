"""Servers and clients: inference (Open Inference Protocol v2), aggregation, LC client, MQTT gateway."""
