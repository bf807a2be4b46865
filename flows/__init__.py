"""Prefect flows: one module per process a coordinator would name."""
