"""Benchmarks (not timed tests): each module reports ratios against a baseline it measures in the same run."""
