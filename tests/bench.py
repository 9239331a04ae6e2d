"""`make bench`: speed figures that tests must not depend on.

1. Ingestion of all 70,000 images (read, shuffle, scale, split, serialize,
   write) - goal: <= 10 s on a 2-core machine.
2. StatisticsGen + ExampleValidator cost on the full ingested data, at the
   pipeline's sample rate and on every example.
3. Trainer input throughput: `model.fit` on the pipeline's tf.data input vs.
   plain Keras on in-memory numpy arrays (same model, batch size) - goal:
   >= 0.9x, for dense_512 and the CNN.

Data: $BENCH_DATA_DIR or ../shared/datasets (MNIST). Set BENCH_QUICK=1 to
skip the CNN.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import components  # noqa: E402,F401
import numpy as np  # noqa: E402

from components.ingestion import examples_io  # noqa: E402
from components.ingestion import ingest  # noqa: E402
from components.trainer import data as data_lib  # noqa: E402
from components.trainer import models  # noqa: E402
from tests import conftest  # noqa: E402


def bench_ingestion(data_dir: str, out: str) -> float:
  best = float("inf")
  for attempt in range(2):
    target = os.path.join(out, f"examples{attempt}")
    start = time.perf_counter()
    result = ingest.ingest(target, dataset="mnist", seed=42,
                           train_fraction=0.7, data_dir=data_dir)
    best = min(best, time.perf_counter() - start)
  print(f"ingestion: {sum(result.counts.values())} images in {best:.2f} s "
        f"(best of 2; goal <= 10 s) {result.counts}")
  return best


def bench_validation(examples_uri: str, schema_path: str) -> None:
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  schema = tfdv.load_schema_text(schema_path)
  for rate in (0.1, 1.0):
    start = time.perf_counter()
    for split in ("train", "eval", "test"):
      stats = tfdv.generate_statistics_from_tfrecord(
          os.path.join(examples_io.split_dir(examples_uri, split), "*"),
          stats_options=tfdv.StatsOptions(sample_rate=rate))
      anomalies = tfdv.validate_statistics(stats, schema)
      assert not anomalies.anomaly_info, anomalies
    print(f"statistics + validation, sample_rate={rate}: "
          f"{time.perf_counter() - start:.1f} s for 3 splits")


def _examples_per_second(model_name, fit_input, batch_size, epochs) -> float:
  """Training throughput of `model.fit` after a short warm-up (tracing)."""
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  preset = models.get_preset(model_name)
  model = models.compile_model(models.build_model(preset), preset.optimizer)
  model.fit(*fit_input, epochs=1, steps_per_epoch=20, verbose=0,
            batch_size=batch_size)
  start = time.perf_counter()
  model.fit(*fit_input, epochs=epochs, verbose=0, batch_size=batch_size)
  return 42000 * epochs / (time.perf_counter() - start)


def bench_trainer(examples_uri: str, quick: bool) -> None:
  train_dir = examples_io.split_dir(examples_uri, "train")
  batches = list(examples_io.read_split(train_dir))
  x = np.concatenate([b[0] for b in batches])
  y = np.concatenate([b[1] for b in batches])
  for name in ["dense_512"] + ([] if quick else ["cnn"]):
    batch_size = models.get_preset(name).batch_size
    epochs = 1 if name == "cnn" else 3
    dataset = data_lib.make_dataset([os.path.join(train_dir, "*")],
                                    batch_size, shuffle=True)
    pipeline_rate = _examples_per_second(name, (dataset,), None, epochs)
    numpy_rate = _examples_per_second(name, (x, y), batch_size, epochs)
    print(f"trainer {name}: pipeline tf.data {pipeline_rate:,.0f} ex/s, "
          f"numpy {numpy_rate:,.0f} ex/s, ratio "
          f"{pipeline_rate / numpy_rate:.2f} (goal >= 0.9)")


def main() -> int:
  data_dir = os.environ.get("BENCH_DATA_DIR") or os.path.join(
      conftest.DATASETS_DIR, "mnist")
  if not os.path.isdir(data_dir):
    print(f"no data at {data_dir}: set BENCH_DATA_DIR", file=sys.stderr)
    return 1
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as out:
    bench_ingestion(data_dir, out)
    examples = os.path.join(out, "examples0")
    bench_validation(examples, config_lib.PipelineConfig().schema_path)
    bench_trainer(examples, quick=bool(os.environ.get("BENCH_QUICK")))
  return 0


if __name__ == "__main__":
  sys.exit(main())
