"""Speed: the benchmark sections, the one-shot accelerator check and the machine it runs on."""
