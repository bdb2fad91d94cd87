"""netprobe: a network-probe agent for village access nodes."""

__version__ = "0.2.0"
