"""Density estimation on learned features: the Gaussian (GDE, Eq. 2) and KDE."""
