"""Reading ExampleValidator's output into readable lines."""
from __future__ import annotations

import os
from typing import Dict, List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

SCHEMA_DIFF_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
  """The ingested examples do not match the curated schema."""


def read_anomalies(anomalies_uri: str, split: str) -> anomalies_pb2.Anomalies:
  path = os.path.join(anomalies_uri, f"Split-{split}", SCHEMA_DIFF_FILE)
  anomalies = anomalies_pb2.Anomalies()
  with tf.io.gfile.GFile(path, "rb") as f:
    anomalies.ParseFromString(f.read())
  return anomalies


def describe(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]
             ) -> List[str]:
  """One line per anomaly: 'split/feature: short description (details)'."""
  lines = []
  for split, anomalies in sorted(anomalies_by_split.items()):
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f"{split}/{feature}: {info.short_description} "
                   f"({info.description})")
    if anomalies.HasField("dataset_anomaly_info"):
      info = anomalies.dataset_anomaly_info
      lines.append(f"{split}: {info.short_description} ({info.description})")
  return lines


def check(anomalies_uri: str, splits: List[str]) -> None:
  """Raises DataAnomaliesError listing every anomaly found in `splits`."""
  problems = describe({s: read_anomalies(anomalies_uri, s) for s in splits})
  if problems:
    raise DataAnomaliesError(
        f"{len(problems)} data anomalies, nothing pushed: "
        + "; ".join(problems))
