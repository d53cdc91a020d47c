"""Benchmarks, not timed tests.

Each module reports ratios against a baseline it measures in the same run.
"""
