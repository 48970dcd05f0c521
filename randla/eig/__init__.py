"""Randomized low-rank approximation, eigenvectors and trace estimation (to come)."""
