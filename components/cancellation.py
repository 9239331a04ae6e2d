"""A run's request to stop, for components running in the runner's process.

`pipeline.concurrent_dag_runner` runs ready components side by side in
threads; when one fails it calls `request_stop`, and long work polls
`stop_requested` (the Trainer after every call of up to 32 batches:
`StopWhenRunFails` in `components.trainer.task`), so a failed run ends in
seconds, not when its training would have ended. The request holds for
the process until `clear()`: the runner clears it when a run starts and
once all of a run's components have returned. Components run in processes
of their own (Kubeflow) never see it; their orchestrator stops them.
"""
from __future__ import annotations

from typing import Optional

_reason: Optional[str] = None  # set: the run has been asked to stop


class RunStopped(RuntimeError):
  """Raised by work that stopped because another part of its run failed."""


def request_stop(reason: str) -> None:
  """Asks the run to stop; the first reason given is kept."""
  global _reason
  if _reason is None:
    _reason = reason


def stop_requested() -> Optional[str]:
  """The reason given to `request_stop`, or None while the run goes on."""
  return _reason


def clear() -> None:
  global _reason
  _reason = None
