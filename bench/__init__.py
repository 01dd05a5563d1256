"""Benchmarks: run as scripts (``python3 bench/<name>.py``), not collected by pytest."""
