"""Benchmark of the copy engine against ``skopeo sync`` on local registries (not a test)."""
