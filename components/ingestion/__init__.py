"""Ingestion: official IDX files -> seeded 7:3 split -> TFX `Examples`."""
