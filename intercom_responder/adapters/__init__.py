"""Thin adapters at the edges: Intercom, the model, Mem0, Slack, the state file, metrics."""
