"""Benchmarks: reports, not tests (see each script)."""
