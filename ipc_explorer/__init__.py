"""ipc-explorer: make inter-process communication visible."""

__version__ = "0.1.0"
