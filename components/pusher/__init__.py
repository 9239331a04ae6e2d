"""Pusher: blessed models into a TF Serving directory, atomically."""
