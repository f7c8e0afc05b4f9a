"""Analyses beyond one run: seeds and sweeps, synthetic anomalies, t-SNE."""
