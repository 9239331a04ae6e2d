"""Validation gate: stops the DAG before training when the data has anomalies."""
