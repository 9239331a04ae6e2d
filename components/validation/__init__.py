"""Validation gate: stops the run before the push when the data has anomalies."""
