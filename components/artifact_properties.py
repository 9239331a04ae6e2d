"""Property names one component writes on an artifact and another reads,
defined once: the best eval accuracy ever pushed in the lineage and its
version travel from the baseline lookup's `Model` to the Evaluator's
blessing (and on to the Pusher and the report)."""

BEST_EVER_ACCURACY_KEY = "best_ever_accuracy"
BEST_EVER_VERSION_KEY = "best_ever_version"
