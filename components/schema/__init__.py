"""The curated schema, imported into the pipeline."""
