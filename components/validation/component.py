"""`ValidationGate`: fails when ExampleValidator reported any anomaly.

The Pusher runs after it, so bad data never reaches serving; the Trainer
trains meanwhile, and stops when the gate fails (components/cancellation).
"""
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.validation import anomalies as anomalies_lib


@component
def ValidationGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    code_fingerprint: Parameter[str] = "") -> None:
  """`code_fingerprint`: of components.validation, for the cache key."""
  del code_fingerprint
  anomalies_lib.check(anomalies.uri,
                      artifact_utils.decode_split_names(anomalies.split_names))
