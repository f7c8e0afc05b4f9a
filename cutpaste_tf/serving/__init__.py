"""Serving: the SavedModel scorers (image and patch) and TFLite conversion."""
