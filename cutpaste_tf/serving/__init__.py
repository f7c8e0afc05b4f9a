"""Serving: the SavedModel scorers (image and patch), TFLite conversion, scoring image files
with an export (predictions.py, what launch.predict runs), and the requests a TF Serving client
sends (client.py: REST body and gRPC PredictRequest)."""
