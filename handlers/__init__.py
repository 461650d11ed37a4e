"""Thin Slack listeners, one module per surface; see handlers.registry."""
