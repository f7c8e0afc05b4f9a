"""Defect localisation (Sec. 2.4, 4.2, Appendix A.5): patch models, dense anomaly maps,
Gaussian receptive-field upsampling, GradCAM, and the per-category localisation run."""
