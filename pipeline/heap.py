"""The start-up heap: the cyclic garbage collector off while the libraries
import, and what they built frozen before the DAG runs.

Importing TensorFlow, TFX, TFMA, TFDV and Beam builds about a million Python
objects that live as long as the process. With the collector on, that growth
sets off about eight full collections during the imports, each scanning
everything imported so far, and each full collection during the run scans
it all again, mid-epoch or mid-report. `gc.freeze()` moves the start-up
objects to a generation no collection scans; the collector then runs as
usual on what the run itself allocates. The imports leave a few thousand
objects of cyclic garbage, which stay (docs/benchmarks.md has the figures).

Only a process's entry point pauses the collector (`pause_collection`):
`local_runner.main`, which turns it back on however it returns, and each
Kubeflow task's `kubeflow_entrypoint.main`. Library callers of
`local_runner.run` (the tests, `make compare`'s run per model) never pause
it, so their `resume_collection` does nothing and nothing of an earlier run
is ever frozen.
"""
from __future__ import annotations

import gc

_paused = False


def pause_collection() -> None:
  """Turns the cyclic collector off until `resume_collection` (call first
  thing in a process's entry point)."""
  global _paused
  if gc.isenabled():
    gc.disable()
    _paused = True


def resume_collection() -> None:
  """If `pause_collection` turned the collector off: freezes every object
  allocated so far and turns the collector back on. Otherwise nothing."""
  global _paused
  if _paused:
    _paused = False
    gc.freeze()
    gc.enable()
