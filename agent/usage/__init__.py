"""What watching costs: the bytes the agent itself causes on the uplink, counted and kept to a budget.

docs/data-cost.md explains the accounting, the budget and the `metered` profile.
"""
