"""Analyses beyond one run: seeds and sweeps, transfer, synthetic anomalies, t-SNE."""
