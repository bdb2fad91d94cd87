"""netprobe: a network-probe agent for village access nodes."""

__version__ = "0.1.0"
