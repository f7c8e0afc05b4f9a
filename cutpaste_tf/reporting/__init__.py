"""Reporting: the paper-style result tables (tables.py), experiment tables, the HTML report and
the paper's published numbers."""
