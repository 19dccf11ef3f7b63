"""Bundled data sources and readers for user formats; they return arrays or tf.data."""
