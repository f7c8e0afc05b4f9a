"""The run pipeline: one category from split to export, and finished runs on disk."""
