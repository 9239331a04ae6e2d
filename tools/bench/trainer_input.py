"""Figure 5: `model.fit` on the Trainer's tf.data input against `fit` on
numpy arrays, alternating, the median of the rounds' ratios."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List

import numpy as np

from tools.bench.pairs import Row

TRAINER_BENCH = {"dense_512": {"examples": 42000, "epochs": 1, "rounds": 3}}


def _fit_rate(name: str, fit_input, batch_size, examples: int,
              epochs: int) -> float:
  """Examples per second of `model.fit`, after a short warm-up (tracing)."""
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  from components.trainer import models  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  preset = models.get_preset(name)
  model = models.compile_model(models.build_model(preset), preset.optimizer)
  model.fit(*fit_input, epochs=1, steps_per_epoch=10, verbose=0,
            batch_size=batch_size)
  start = time.perf_counter()
  model.fit(*fit_input, epochs=epochs, verbose=0, batch_size=batch_size)
  return examples * epochs / (time.perf_counter() - start)


def bench_trainer(examples_uri: str, names: List[str]) -> Dict[str, Any]:
  from components.ingestion import examples_io  # pylint: disable=g-import-not-at-top
  from components.trainer import data as data_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import models  # pylint: disable=g-import-not-at-top
  pattern = os.path.join(examples_io.split_dir(examples_uri, "train"), "*")
  x, y = (t.numpy() for t in data_lib.load_split(pattern))
  results = {}
  for name in names:
    batch_size = models.get_preset(name).batch_size
    n, epochs, rounds = (TRAINER_BENCH[name][k]
                         for k in ("examples", "epochs", "rounds"))
    start = time.perf_counter()
    dataset = data_lib.make_dataset(pattern, batch_size, shuffle=True)
    load_seconds = time.perf_counter() - start
    dataset = dataset.take(n // batch_size)
    rates = {"pipeline": [], "numpy": []}
    for _ in range(rounds):  # alternate, so drift hits both sides alike
      rates["pipeline"].append(_fit_rate(name, (dataset,), None,
                                         n // batch_size * batch_size, epochs))
      rates["numpy"].append(_fit_rate(name, (x[:n], y[:n]), batch_size, n,
                                      epochs))
    ratios = [p / q for p, q in zip(rates["pipeline"], rates["numpy"])]
    results[name] = {"pipeline_examples_per_second": round(
                         float(np.median(rates["pipeline"]))),
                     "numpy_examples_per_second": round(
                         float(np.median(rates["numpy"]))),
                     "ratio": round(float(np.median(ratios)), 3),
                     "ratios": [round(r, 3) for r in ratios],
                     "load_split_seconds": round(load_seconds, 2),
                     "batch_size": batch_size, "examples": n,
                     "epochs": epochs}
  return results


def rows(results: Dict[str, Any], verdict: Callable[[str], str]
         ) -> List[Row]:
  """The table's rows of figure 5."""
  out: List[Row] = []
  for name, r in (results.get("trainer") or {}).items():
    out.append((f"trainer input {name}: tf.data vs numpy",
                 f"{r['pipeline_examples_per_second']:,} vs "
                 f"{r['numpy_examples_per_second']:,} ex/s = "
                 f"{r['ratio']:.2f}x", ">= 0.9x",
                 verdict("trainer_input_vs_numpy")))
  if not results.get("trainer"):
    out.append(("trainer input: tf.data vs numpy", "skipped (--quick)",
                 ">= 0.9x", "not measured"))
  return out
