"""Artifact types of our own: the run report, and those the Kubeflow
Pipelines UI displays (`system.Metrics`, `system.ClassificationMetrics`,
`system.HTML` and `system.Markdown`).

They are TFX artifact types whose type names are KFP's schema titles, so a
compiled spec declares them as KFP's own types, the KFP UI shows them (scalar
metrics, the confusion matrix, the HTML page and the Markdown), and local
runs record them in ML Metadata like any other artifact. Their custom
properties become the KFP artifact's metadata. `HTML` and `Markdown` are
single files at the artifact's URI, as KFP expects.

On Kubeflow, TFX finds an artifact's Python class by its schema title;
`register()` maps these titles to the classes below (the Kubeflow entrypoint
calls it).
"""
from __future__ import annotations

from tfx.types import artifact
from tfx.types import value_artifact


class Metrics(artifact.Artifact):
  """Scalar metrics, one custom property each (KFP `system.Metrics`)."""
  TYPE_NAME = "system.Metrics"


class ClassificationMetrics(artifact.Artifact):
  """A confusion matrix in the custom property `confusionMatrix`, in KFP's
  shape: {"annotationSpecs": [{"displayName": ...}], "rows": [{"row": [...]}]}
  (KFP `system.ClassificationMetrics`)."""
  TYPE_NAME = "system.ClassificationMetrics"
  CONFUSION_MATRIX_KEY = "confusionMatrix"


class _TextFile(value_artifact.ValueArtifact):
  """A UTF-8 text file at the artifact's URI."""

  def encode(self, value: str) -> bytes:
    return value.encode("utf-8")

  def decode(self, serialized_value: bytes) -> str:
    return serialized_value.decode("utf-8")


class HTML(_TextFile):
  """A self-contained HTML page (KFP `system.HTML`)."""
  TYPE_NAME = "system.HTML"


class Markdown(_TextFile):
  """A Markdown document (KFP `system.Markdown`)."""
  TYPE_NAME = "system.Markdown"


class RunReport(artifact.Artifact):
  """A directory: summary.json, report.md, report.html and the pictures."""
  TYPE_NAME = "mnist.RunReport"


KFP_TYPES = (Metrics, ClassificationMetrics, HTML, Markdown)
OUR_TYPES = KFP_TYPES + (RunReport,)


def register() -> None:
  """Lets TFX's KFP executor entrypoint find these classes by schema title."""
  from tfx.orchestration.kubeflow.v2 import compiler_utils  # pylint: disable=g-import-not-at-top
  for cls in OUR_TYPES:
    compiler_utils.TITLE_TO_CLASS_PATH[cls.TYPE_NAME] = (
        f"{cls.__module__}.{cls.__name__}")
