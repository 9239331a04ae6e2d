"""One line per component on the console (`[start] X`, `[done ] X 1.2 s`),
and TFX's and Beam's routine logs hidden (VERBOSE=1 shows them)."""
from __future__ import annotations

import logging
import re
import sys
import time
from typing import Dict, TextIO


# Per-component start/finish lines with durations, for either TFX runner:
# BeamDagRunner logs "node X is running." / "node X is finished." and
# LocalDagRunner "Component X is running." / "... is finished."; the handler
# turns those records into one readable line each. (summary.json's durations
# come from ML Metadata, through the Report component.)

_PATTERN = re.compile(r"^(?:node|Component) (\S+) is (running|finished)\.$")
# Harmless warnings that TFX 1.16 / Beam print on every run.
_NOISE = re.compile(r"ArtifactQuery.property_predicate is not supported|"
                    r"python-snappy|tf_record_iterator|is deprecated")


class _DropNoise(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return not _NOISE.search(record.getMessage())


class ComponentProgress(logging.Handler):
  """Prints `[start] X` and `[done ] X  12.3 s`; keeps `seconds` per node."""

  def __init__(self, stream: TextIO = sys.stdout):
    super().__init__(logging.INFO)
    self.stream = stream
    self.started: Dict[str, float] = {}
    self.seconds: Dict[str, float] = {}

  def emit(self, record: logging.LogRecord) -> None:
    match = _PATTERN.match(record.getMessage())
    if not match:
      return
    node, state = match.groups()
    now = time.time()
    if state == "running":
      self.started[node] = now
      self.stream.write(f"[start] {node}\n")
    else:
      self.seconds[node] = round(now - self.started.get(node, now), 2)
      self.stream.write(f"[done ] {node:<32} {self.seconds[node]:8.1f} s\n")
    self.stream.flush()


def show_progress(quiet_tfx_logs: bool = True) -> ComponentProgress:
  """Installs the handler; with `quiet_tfx_logs`, other INFO logs are hidden."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  handler = ComponentProgress()
  # Through absl's flag, not Logger.setLevel: TensorFlow's SavedModel export
  # resets the absl logger to the flag's value.
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logger = logging.getLogger("absl")
  for old in [h for h in absl_logger.handlers
              if isinstance(h, ComponentProgress)]:
    absl_logger.removeHandler(old)
  absl_logger.addHandler(handler)
  if quiet_tfx_logs:
    absl_logging.get_absl_handler().setLevel(logging.WARNING)
    for root_handler in logging.getLogger().handlers:
      root_handler.setLevel(logging.WARNING)
      root_handler.addFilter(_DropNoise())
    absl_logging.get_absl_handler().addFilter(_DropNoise())
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
  return handler
