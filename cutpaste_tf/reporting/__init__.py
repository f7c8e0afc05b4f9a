"""Reporting: the HTML report, experiment tables and the paper's published numbers."""
