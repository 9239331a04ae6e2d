"""`DataFingerprint`: the digest of the data a run reads, taken when the run
starts, for a DAG compiled now and run later (Kubeflow).

The ingestion's cache key holds `sources.data_digest`. A runner that builds
the DAG just before running it computes the digest itself; a compiled spec
cannot, so its first task, never cached, reads the data directory and hands
the digest to `MnistExampleGen` as a parameter: KFP's cache keys parameter
values, so data replaced in place is ingested again and unchanged data is
not.
"""
from tfx.dsl.component.experimental.annotations import OutputDict
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component

from components.ingestion import sources


@component
def DataFingerprint(  # pylint: disable=invalid-name
    dataset: Parameter[str], data_dir: Parameter[str] = "",
    tfds_data_dir: Parameter[str] = "", cache_dir: Parameter[str] = "",
    code_fingerprint: Parameter[str] = "") -> OutputDict(digest=str):
  """`digest`: `sources.data_digest` of the data (`code_fingerprint`: of
  this module's code)."""
  del code_fingerprint
  return {"digest": sources.data_digest(
      dataset, data_dir or None, tfds_data_dir or None, cache_dir or None)}
