"""Miaou: a self-hosted, federated chat and audio node."""

__version__ = "0.1.0"
