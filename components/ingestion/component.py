"""The ingestion component: official MNIST-format files -> TFX `Examples`."""
from __future__ import annotations

from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.placeholder import placeholder
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components import fingerprint
from components.ingestion import executor


class IngestionSpec(ComponentSpec):
  PARAMETERS = {
      "dataset": ExecutionParameter(type=str),
      "seed": ExecutionParameter(type=int),
      "train_fraction": ExecutionParameter(type=float),
      "max_examples": ExecutionParameter(type=int, optional=True),
      "data_dir": ExecutionParameter(type=str, optional=True),
      "tfds_data_dir": ExecutionParameter(type=str, optional=True),
      "cache_dir": ExecutionParameter(type=str, optional=True),
      # `sources.data_digest` of the data: the cache key sees its content.
      "data_digest": ExecutionParameter(type=str),
      "code_fingerprint": ExecutionParameter(type=str),
  }
  INPUTS = {}
  OUTPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}


class MnistExampleGen(base_component.BaseComponent):
  """Reads MNIST or Fashion-MNIST and emits seeded `train`/`eval`/`test` splits.

  Outputs an `Examples` artifact of gzip TFRecords (tf.Example with `image`:
  784 floats in [0,1] and `label`: int64 0-9) in the standard `Split-<name>`
  layout, with per-split counts and class histograms as custom properties.

  `data_digest` (`sources.data_digest`, read when the run starts) is part
  of the cache key, so data replaced in place is ingested again; the
  executor refuses to ingest data that no longer has that digest. It may
  be a placeholder of an upstream value (the Kubeflow spec's
  `DataFingerprint` task, which reads the data when the run starts).
  """
  SPEC_CLASS = IngestionSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, dataset: str, seed: int = 42,
               train_fraction: float = 0.7,
               max_examples: Optional[int] = None,
               data_dir: Optional[str] = None,
               tfds_data_dir: Optional[str] = None,
               cache_dir: Optional[str] = None,
               data_digest: Union[str, placeholder.Placeholder] = ""):
    super().__init__(IngestionSpec(
        dataset=dataset, seed=seed, train_fraction=train_fraction,
        max_examples=max_examples, data_dir=data_dir,
        tfds_data_dir=tfds_data_dir, cache_dir=cache_dir,
        data_digest=data_digest,
        code_fingerprint=fingerprint.code_fingerprint(executor.__name__),
        examples=types.Channel(type=standard_artifacts.Examples)))

