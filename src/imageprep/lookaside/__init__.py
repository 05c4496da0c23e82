"""Lookaside ("simple signing") signatures: registries.d, and signature files in a directory."""
