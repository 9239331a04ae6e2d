"""TFX executor of the ingestion component: a thin shell around `ingest`."""
from __future__ import annotations

import json
from typing import Any, Dict, List

from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.ingestion import ingest
from components.ingestion import sources
from components.ingestion import split


class Executor(base_executor.BaseExecutor):
  """Writes the train/eval/test splits into the output `Examples` artifact."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    examples = artifact_utils.get_single_instance(output_dict["examples"])
    source = dict(dataset=exec_properties["dataset"],
                  data_dir=exec_properties.get("data_dir") or None,
                  tfds_data_dir=exec_properties.get("tfds_data_dir") or None,
                  cache_dir=exec_properties.get("cache_dir") or None)
    result = ingest.ingest(
        examples.uri, seed=int(exec_properties["seed"]),
        train_fraction=float(exec_properties["train_fraction"]),
        max_examples=int(exec_properties.get("max_examples") or 0) or None,
        **source)
    # What was read is what the cache key named (read once more, after).
    digest = sources.check_unchanged(exec_properties["data_digest"], **source)
    examples.set_string_custom_property("data_digest", digest)
    examples.split_names = artifact_utils.encode_split_names(
        list(split.SPLIT_NAMES))
    examples_utils.set_payload_format(
        examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    for name, count in result.counts.items():
      examples.set_int_custom_property(f"count_{name}", count)
    examples.set_string_custom_property(
        "class_histograms", json.dumps(result.class_histograms))
    examples.set_string_custom_property("source", result.source)
    # 1: the official files of this dataset; 0: data of unknown origin.
    examples.set_int_custom_property("source_verified", int(result.verified))
    examples.set_string_custom_property(
        "source_sha256", json.dumps(result.checksums, sort_keys=True))
