"""The contract both ends share: the Reading (`model`), its topics (`topics`) and its checks (`validate`).

The agent and the collector import these same modules, so a Reading the node
sends is exactly what the collector accepts. Nothing here does I/O.
"""
