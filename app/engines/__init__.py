"""Pieces plugged into MONAI's Ignite engines (batch preparation, handlers)."""
