"""Skiff's message contracts: every message, schema and subject that crosses a process boundary."""
