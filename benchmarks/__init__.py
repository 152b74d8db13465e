"""Benchmarks: ours vs the anchor each issue names, same data, same run (``make bench``)."""
