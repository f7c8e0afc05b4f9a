"""Speed: the benchmark sections and the one-shot accelerator check."""
