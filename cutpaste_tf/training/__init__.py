"""Training: the CutPaste step and loop, the learning check, gradient diagnostics."""
