"""Reproducible speed and memory measurements (each script prints JSON)."""
