"""Evaluation: features to scores, AUROC and pixel metrics, decision thresholds, the AUROCs of
Table 3's transfer features (transfer.py)."""
