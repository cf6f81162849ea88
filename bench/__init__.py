"""Benchmarks (`make bench`): one module per benchmark, each returning a Section for docs/BENCHMARKS.md."""
