"""What every figure of the bench uses: paths, running a measured process,
median and range."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import components  # noqa: E402,F401  (Keras 2, before TensorFlow loads)
import numpy as np  # noqa: E402

from pipeline import config as config_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# The shared datasets beside the checkout (BENCH_DATA_DIR overrides).
DEFAULT_DATASETS_DIR = os.path.join(os.path.dirname(REPO), "shared",
                                    "datasets")
# Beam's options as the pipeline's components get them by default.
BEAM_ARGS = config_lib.PipelineConfig().beam_pipeline_args


def run_process(argv: List[str], env: Optional[Dict[str, str]] = None
                ) -> Dict[str, Any]:
  """Runs `argv`; wall seconds, peak RSS (GiB, the process's own), output."""
  start = time.perf_counter()
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      argv, env=env, cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  output = process.stdout.read()
  _, status, usage = os.wait4(process.pid, 0)
  wall = time.perf_counter() - start
  if os.waitstatus_to_exitcode(status) != 0:
    raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{output[-3000:]}")
  return {"wall_seconds": round(wall, 2),
          "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3),  # KiB -> GiB
          "output": output}


def spread(values: List[float]) -> Dict[str, float]:
  """Median and range of `values` (for figures measured several times)."""
  return {"median": round(float(np.median(values)), 3),
          "min": round(float(min(values)), 3),
          "max": round(float(max(values)), 3)}


def gpus() -> List[str]:
  """The GPUs TensorFlow sees, in a process of its own (this one stays off
  the GPU the measured processes use)."""
  result = run_process(
      [sys.executable, "-c", "import json, tensorflow as tf; "
       "print('GPUS', json.dumps([d.name for d in "
       "tf.config.list_physical_devices('GPU')]))"],
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  line = [l for l in result["output"].splitlines() if l.startswith("GPUS ")]
  return json.loads(line[-1][len("GPUS "):])


def memory_gib() -> int:
  return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
               / 2**30)
