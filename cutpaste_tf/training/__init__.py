"""Training: one CutPaste step (step.py), the loop with checkpoints (train.py), the distribution
strategy (distribute.py), the learning check, gradient diagnostics."""
