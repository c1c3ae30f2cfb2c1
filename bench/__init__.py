"""Benchmarks: scripts printing tables with ratios against a baseline measured in the same run."""
