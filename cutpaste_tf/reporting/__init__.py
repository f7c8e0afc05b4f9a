"""Reporting: the paper-style result tables (tables.py), a run's summary (summary.py), experiment
tables, the HTML report and the paper's published numbers."""
