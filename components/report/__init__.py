"""`Report`: what a run did, for people (report.md, report.html with its
pictures) and for programs (summary.json), written by the last component of
the DAG so every orchestrator produces it."""
