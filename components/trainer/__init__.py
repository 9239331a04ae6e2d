"""Trainer: Keras models (dense nets and a CNN) trained on the ingested splits."""
