"""Evaluating ContainerImagePrepare: environment files and entries in, heat parameters out (no copies)."""
