"""Rescoring versions whose accuracy no record states.

The best-ever guard compares a candidate with the highest accuracy among
the versions in the serving directory. A version without a readable
`push_record.json` (damaged, or pushed by hand before records existed and
with no `registry.json` entry) has no accuracy on record; it is scored here
on the eval split the candidate is judged on, through the `serving_default`
signature TFMA uses, so the guard counts every version. One it cannot
score stops the evaluation in one line: nothing is pushed past a version
whose accuracy is unknown.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from components.evaluator import eval_config
from components.ingestion import examples_io
from serving import versions

BATCH_SIZE = 1024


class RescoreError(RuntimeError):
  """An unrecorded version could not be scored."""


def accuracy(model_dir: str, split_dir: str) -> float:
  """The fraction of examples in `split_dir` (a written split of
  serialized `tf.Example`s) whose label is the argmax of the model's
  `serving_default` output."""
  serve = tf.saved_model.load(model_dir).signatures[eval_config.SIGNATURE]
  (input_name,) = serve.structured_input_signature[1].keys()
  label_spec = {examples_io.LABEL_KEY:
                examples_io.FEATURE_SPEC[examples_io.LABEL_KEY]}
  correct = total = 0
  for batch in examples_io.split_records(split_dir, BATCH_SIZE):
    labels = tf.io.parse_example(batch, label_spec)[examples_io.LABEL_KEY]
    outputs = serve(**{input_name: batch})
    scores = (outputs["probabilities"] if "probabilities" in outputs
              else next(iter(outputs.values())))
    predicted = np.argmax(scores.numpy(), axis=-1)
    correct += int(np.sum(predicted == labels.numpy()[:, 0]))
    total += len(predicted)
  if not total:
    raise ValueError(f"{split_dir}: no examples")
  return correct / total


def rescore(version_dirs: Sequence[str], split_dir: str) -> Dict[str, float]:
  """{version name: accuracy on `split_dir`} of each of `version_dirs`.

  Raises RescoreError, in one line naming the version, when one cannot be
  loaded or scored.
  """
  scored = {}
  for version_dir in version_dirs:
    try:
      scored[versions.version_name(version_dir)] = accuracy(
          version_dir, split_dir)
    except (ValueError, KeyError, OSError, tf.errors.OpError) as e:
      reason = (getattr(e, "message", None) or str(e)).splitlines()[0][:120]
      raise RescoreError(
          f"{version_dir}: in service without a readable push_record.json, "
          f"and it cannot be scored on the eval split ({reason}); nothing "
          "is pushed past a version whose accuracy is unknown: restore its "
          "record or remove the version") from None
  return scored
