"""`TestSplitScorer`: the candidate and the model in service, scored on the
official test split (accuracy and confusion matrix, for the report and the
KFP UI). The gate itself decides on the eval split, in the Evaluator."""
