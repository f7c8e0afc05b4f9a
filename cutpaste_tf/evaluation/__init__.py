"""Evaluation: features to scores, AUROC and pixel metrics, decision thresholds."""
