"""The curated TFDV schema of each dataset: `<dataset>/schema.pbtxt`
(package data, so an installed pipeline finds them beside this file)."""
