"""Evaluator: the TFMA configuration that decides whether a model is blessed."""
