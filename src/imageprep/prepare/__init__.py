"""Orchestration: environment in, heat parameters (and, later, copies) out."""
