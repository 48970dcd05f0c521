"""Randomized least squares (to come: see the project issues)."""
