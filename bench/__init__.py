"""Benchmarks: scripts run as `python bench/<name>.py`; each ends with a `ratio:` line."""
