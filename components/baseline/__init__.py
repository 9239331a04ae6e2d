"""The baseline: the model currently in service, found from the serving dir."""
