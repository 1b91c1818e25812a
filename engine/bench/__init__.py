"""Benchmarks: in-set and transfer runs and their reports."""
