"""Serving: the SavedModel scorers (image and patch), TFLite conversion, and scoring image files
with an export (predictions.py, what launch.predict runs)."""
