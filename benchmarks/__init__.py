"""Benchmark scripts: each prints the figure it measures. Run them from the repository root."""
