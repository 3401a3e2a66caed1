"""Benchmarks: loyaltyrules against hand-written Python and peer rules engines."""
