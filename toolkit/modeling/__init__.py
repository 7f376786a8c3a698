"""Encoder, pooling, task heads and the saved-model format."""
