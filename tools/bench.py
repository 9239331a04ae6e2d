"""`make bench`: the pipeline's cost as ratios measured side by side.

Every verdict is a ratio of two things measured in this one run (absolute
times on shared machines drift), except the unchanged rerun (<= 5 s):

1. The whole DAG against the plain script a user would write instead:
   `python -m pipeline.local_runner` (what `make run-local` runs: dense_512
   on full MNIST, 5 epochs, an empty OUTPUT_DIR) against `KERAS3_SCRIPT`
   (the installed TensorFlow's `tf.keras`, i.e. Keras 3, no project code:
   read the IDX files, scale, fit on the 60,000 training images with the
   same optimizer, epochs and batch size, evaluate, save), each a process
   of its own, in interleaved pairs (DAG, script) x `PAIRS`. Target: the
   median of the pairs' ratios <= 1.5x; each figure is printed as median
   and range. For the record (no target) `TF_KERAS_SCRIPT`, the same script
   on Keras 2 (`tf_keras`, the pipeline's Keras), once.
2. Reruns: the same command three more times. After its own push (its
   model is the one in service: nothing to decide, reported); after another
   run pushed a version (the bench copies the model in as a new version), so
   it compares the candidate with the new model in service again (its wall
   against its Evaluator's own seconds, reported: a cold process's imports
   are its floor); then unchanged: <= 5 s wall.
3. Scaling: the official training images repeated 1, 2, 4, 8 times (each
   copy after the first shifted by one pixel, so every image is distinct),
   written as IDX files by the bench; ingestion, statistics (our
   StatisticsGen executor, every split) and evaluation (our Evaluator
   executor, TFMA on the eval split, the DAG's model, no baseline) each in a
   process of its own, timed inside it (imports excluded) and its peak RSS
   taken from the kernel. Targets: time per example at 8x <= 1.25x that at
   1x, peak RSS at 8x <= 2x that at 1x, per stage.
4. CNN epochs: the `cnn` preset's epoch seconds inside the DAG's Trainer
   (3 epochs; the median after the first, which traces) against the same
   CNN in `PLAIN_CNN_SCRIPT` (plain Keras on numpy arrays), the same device
   one after the other. Target on a GPU: <= 1.1x. On a CPU, 6,000 images
   and no target (not in --quick).
5. Trainer input vs plain Keras (`fit` on the pipeline's tf.data input
   against `fit` on numpy arrays, alternating, median of pairs): >= 0.9x.
6. Floors (no target; not in --quick): StatisticsGen and the Evaluator
   against the smallest plain-library calls doing the same work on the
   same examples and model (`tfdv.generate_statistics_from_tfrecord` on
   every split, `tfma.run_model_analysis` with the same EvalConfig), and
   the ratio a DAG could not beat while doing those checks: (script + both
   plain calls) / script.

Prints one table (figure, value, target, verdict), writes `bench.json`,
`bench.png` (the scaling curve: seconds and peak memory against data size)
and `dag.png` (seconds per component) to $BENCH_OUTPUT_DIR (default
outputs/bench). Data: $BENCH_DATA_DIR or ../shared/datasets/mnist.
`--quick` (or BENCH_QUICK=1, a smoke run of about 3 minutes): the DAG and
the script on 6,000 training images for 1 epoch, one pair, scaling from
1/32 of the training set, no trainer-input pairs: its ratios are not the
goals' figures. `--profile STAGE` runs one scaling stage at 1x under
cProfile and prints the top functions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import components  # noqa: E402,F401
import numpy as np  # noqa: E402

# The shared datasets beside the checkout (BENCH_DATA_DIR overrides).
DEFAULT_DATASETS_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "shared", "datasets")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALES = (1, 2, 4, 8)
STAGES = ("ingestion", "statistics", "evaluation")
# The smallest plain-library calls doing a component's work (section 6).
FLOOR_STAGES = ("statistics_floor", "evaluation_floor")
# Goal: (comparison, limit).
TARGETS = {
    "dag_vs_script": ("<=", 1.5),
    "unchanged_rerun_seconds": ("<=", 5.0),
    **{f"{stage}_time_per_example_8x_vs_1x": ("<=", 1.25)
       for stage in STAGES},
    **{f"{stage}_peak_rss_8x_vs_1x": ("<=", 2.0) for stage in STAGES},
    "trainer_input_vs_numpy": (">=", 0.9),
    "gpu_cnn_epoch_vs_script": ("<=", 1.1),
}
TRAINER_BENCH = {"dense_512": {"examples": 42000, "epochs": 1, "rounds": 3}}
# --quick: the DAG and the script on this many training images (1 epoch),
# scaling from this fraction of the training set.
QUICK_MAX_EXAMPLES = 6000
QUICK_SCALING_BASE = 1 / 32
PAIRS = 3  # interleaved (DAG, script) pairs; --quick: 1
BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


# --- 5. Trainer input vs numpy. ---

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


# --- 1. The plain Keras script, a separate process. ------------------------

# What a user writes on the installed TensorFlow 2.16: `tf.keras` (Keras 3),
# no project code. The same IDX files, model, optimizer, epochs and batch.
KERAS3_SCRIPT = r'''
import gzip, os, sys
import numpy as np
import tensorflow as tf
data_dir, out_dir, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
limit = int(sys.argv[4]) or None  # MAX_EXAMPLES: this many training images

def read_idx(name):
  with gzip.open(os.path.join(data_dir, name + ".gz")) as f:
    data = f.read()
  shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
           for i in range(data[3])]
  return np.frombuffer(data, np.uint8, offset=4 + 4 * data[3]).reshape(shape)

x_train = read_idx("train-images-idx3-ubyte").reshape(-1, 784) / 255.0
y_train = read_idx("train-labels-idx1-ubyte")
x_test = read_idx("t10k-images-idx3-ubyte").reshape(-1, 784) / 255.0
y_test = read_idx("t10k-labels-idx1-ubyte")
if limit:
  x_train, y_train = x_train[:limit], y_train[:limit]
  x_test, y_test = x_test[:-(-limit // 6)], y_test[:-(-limit // 6)]
model = tf.keras.Sequential([tf.keras.Input((784,)),
                             tf.keras.layers.Dense(512, activation="relu"),
                             tf.keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=2)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
model.save(os.path.join(out_dir, "model.keras"))
print(f"test accuracy {accuracy:.4f}")
'''

# For the record: the same job on Keras 2 (`tf_keras`, the pipeline's
# Keras), whose first epoch under TF 2.16 spends seconds letting AutoGraph
# convert Keras 2's own code (see components/keras2.py).
TF_KERAS_SCRIPT = KERAS3_SCRIPT.replace(
    "import tensorflow as tf\n",
    "os.environ['TF_USE_LEGACY_KERAS'] = '1'\nimport tensorflow as tf\n")


def _run(argv: List[str], env: Optional[Dict[str, str]] = None
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


def run_plain_script(data_dir: str, out: str, epochs: int,
                     max_examples: int = 0,
                     script: str = KERAS3_SCRIPT) -> Dict[str, Any]:
  """`script` (default `KERAS3_SCRIPT`) as a user runs it: a process of its
  own, on the installed TensorFlow (Keras 3 unless the script says
  otherwise: this process's Keras 2 switch is not passed on)."""
  target = tempfile.mkdtemp(dir=out, prefix="script")
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  result = _run([sys.executable, "-c", script, data_dir, target,
                 str(epochs), str(max_examples)],
                env=dict(env, TF_CPP_MIN_LOG_LEVEL="3"))
  output = result.pop("output").splitlines()
  result["test_accuracy"] = float([l for l in output if l.startswith(
      "test accuracy")][-1].split()[-1])
  # Keras' verbose=2 epoch lines: "469/469 - 5s - 11ms/step - ..." (whole s)
  result["fit_seconds"] = sum(
      int(m.group(1)) for m in (re.search(r" - (\d+)s - ", l) for l in output)
      if m)
  import zipfile  # pylint: disable=g-import-not-at-top
  with zipfile.ZipFile(os.path.join(target, "model.keras")) as saved:
    result["keras"] = json.loads(saved.read("metadata.json"))["keras_version"]
  return result


def spread(values: List[float]) -> Dict[str, float]:
  """Median and range of `values` (for figures measured several times)."""
  return {"median": round(float(np.median(values)), 3),
          "min": round(float(min(values)), 3),
          "max": round(float(max(values)), 3)}


# --- 1 and 2. The DAG and its reruns. --------------------------------------

def run_local(env: Dict[str, str]) -> Dict[str, Any]:
  """One `python -m pipeline.local_runner`: wall seconds, peak RSS, summary."""
  result = _run([sys.executable, "-m", "pipeline.local_runner"], env=env)
  output = result.pop("output")
  with open(os.path.join(env["OUTPUT_DIR"], "summary.json")) as f:
    result["summary"] = json.load(f)
  # Nothing changed since the last finished run: TFX was not started.
  result["summary"]["unchanged"] = "unchanged since run" in output
  return result


def _dag_env(data_dir: str, out: str, epochs: int,
             max_examples: int = 0) -> Dict[str, str]:
  env = dict(os.environ, DATASET="mnist", DATA_DIR=data_dir,
             OUTPUT_DIR=os.path.join(out, "dag"), MODEL="dense_512",
             KERAS_PROGRESS="epoch", EPOCHS=str(epochs))
  for name in ("MAX_EXAMPLES", "ENABLE_CACHE", "NO_CACHE", "RERUN_FROM",
               "LINEAGE", "SERVING_DIR", "VERBOSE", "BEAM_PIPELINE_ARGS",
               "STATS_SAMPLE_RATE"):
    env.pop(name, None)
  if max_examples:  # --quick: 1 epoch on 6,000 images must still push
    env.update(MAX_EXAMPLES=str(max_examples), MIN_ACCURACY="0.5",
               MAX_CLASS_ACCURACY_DROP="0.3")
  return env


def _seconds(summary: Dict[str, Any]) -> Dict[str, float]:
  return {n: c["seconds"] for n, c in summary["components"].items()}


def bench_dag(data_dir: str, out: str, epochs: int,
              max_examples: int = 0, pairs: int = PAIRS) -> Dict[str, Any]:
  """`pairs` interleaved pairs (a first run of the DAG in an empty
  OUTPUT_DIR, then the plain Keras 3 script); then, on the last pair's
  OUTPUT_DIR: a rerun after its own push; a rerun after another run pushed
  a version (the same model copied in: the comparison with the model in
  service must be redone); an unchanged rerun."""
  firsts, scripts = [], []
  for pair in range(pairs):
    print(f"[bench] pair {pair + 1}/{pairs}: run-local, then the plain "
          "Keras 3 script ...", flush=True)
    env = _dag_env(data_dir, os.path.join(out, f"pair{pair}"), epochs,
                   max_examples)
    firsts.append(run_local(env))
    scripts.append(run_plain_script(data_dir, out, epochs, max_examples))
  runs = [firsts[-1], run_local(env)]
  first = runs[0]["summary"]
  if first.get("pushed_to"):
    shutil.copytree(first["pushed_to"], os.path.join(
        os.path.dirname(first["pushed_to"]),
        str(int(os.path.basename(first["pushed_to"])) + 1)))
  runs += [run_local(env) for _ in range(2)]
  with open(os.path.join(first["run_dir"], "history.json")) as f:
    fit_seconds = sum(json.load(f)["epoch_seconds"])

  def rerun(result):
    summary = result["summary"]
    return {"wall_seconds": result["wall_seconds"],
            # True: the runner saw nothing changed and did not start TFX.
            "tfx_skipped": bool(summary.get("unchanged")),
            "component_seconds": ({} if summary.get("unchanged") else
                                  _seconds(summary)),
            "recomputed": ([] if summary.get("unchanged") else
                           summary["recomputed_components"])}

  walls = [r["wall_seconds"] for r in firsts]
  script_walls = [s["wall_seconds"] for s in scripts]
  components = {n: spread([_seconds(r["summary"]).get(n) or 0.0
                           for r in firsts])["median"]
                for n in _seconds(first)}
  return {
      "model": "dense_512", "epochs": epochs, "max_examples": max_examples,
      "pairs": pairs,
      "test_accuracy": first["test_accuracy"]["candidate"],
      "model_uri": first["candidate_model"],
      "output_dir": env["OUTPUT_DIR"],
      "wall_seconds": spread(walls),
      "component_seconds": components,
      "fit_seconds": round(fit_seconds, 1),
      "peak_rss_gib": max(r["peak_rss_gib"] for r in firsts),
      "script": {"wall_seconds": spread(script_walls),
                 "peak_rss_gib": max(s["peak_rss_gib"] for s in scripts),
                 "test_accuracy": scripts[-1]["test_accuracy"],
                 "fit_seconds": spread([x["fit_seconds"] for x in scripts]
                                       )["median"],
                 "keras": scripts[-1]["keras"]},
      "ratios": [round(d / s, 3) for d, s in zip(walls, script_walls)],
      "rerun_after_own_push": rerun(runs[1]),
      "rerun_after_push": rerun(runs[2]),
      "unchanged_rerun": rerun(runs[3]),
  }


# --- 3. Scaling: each stage in a process of its own. -----------------------

def make_scaled_dataset(data_dir: str, target: str, scale: float) -> str:
  """IDX files with the official training images repeated `scale` times
  (a fraction: the first part of them), copy k shifted right by k pixels;
  the official test files as they are. Written copy by copy."""
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  import gzip  # pylint: disable=g-import-not-at-top
  import struct  # pylint: disable=g-import-not-at-top
  os.makedirs(target, exist_ok=True)
  images = idx.parse_images(idx.read_bytes(os.path.join(
      data_dir, "train-images-idx3-ubyte.gz")), "train images")
  labels = idx.parse_labels(idx.read_bytes(os.path.join(
      data_dir, "train-labels-idx1-ubyte.gz")), "train labels")
  total = int(round(len(images) * scale))
  copies = -(-total // len(images))
  with gzip.open(os.path.join(target, "train-images-idx3-ubyte.gz"), "wb",
                 compresslevel=1) as f:
    f.write(struct.pack(">IIII", idx.IMAGES_MAGIC, total, 28, 28))
    left = total
    for k in range(copies):
      part = np.roll(images, k, axis=2)[:left]
      f.write(part.tobytes())
      left -= len(part)
  idx.write_idx(os.path.join(target, "train-labels-idx1-ubyte.gz"),
                np.tile(labels, copies)[:total])
  for stem in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    shutil.copy(os.path.join(data_dir, stem), target)
  return target


def stage_main(stage: str, source: str, out: str,
               model_uri: Optional[str]) -> Dict[str, Any]:
  """Runs one stage in this process (called as `--stage`); imports are done
  before the clock starts."""
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.ingestion import ingest  # pylint: disable=g-import-not-at-top
  from components.ingestion import split  # pylint: disable=g-import-not-at-top

  def artifact(kind, uri, splits=None):
    a = kind()
    a.uri = uri
    if splits:
      a.split_names = artifact_utils.encode_split_names(splits)
    return a

  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=BEAM_ARGS, tmp_dir=os.path.join(out, "tmp"),
      unique_id="bench")
  if stage == "ingestion":
    start = time.perf_counter()
    result = ingest.ingest(out, dataset="mnist", seed=42, train_fraction=0.7,
                           data_dir=source)
    return {"seconds": time.perf_counter() - start,
            "examples": sum(result.counts.values()), "counts": result.counts}
  examples = artifact(standard_artifacts.Examples, source,
                      list(split.SPLIT_NAMES))
  if stage == "statistics":
    import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
    from components.statistics import executor  # pylint: disable=g-import-not-at-top
    # The pipeline's StatisticsGen: its executor and options (in process).
    options = tfdv.StatsOptions(sample_rate=1.0,
                                use_sketch_based_topk_uniques=True)
    start = time.perf_counter()
    executor.Executor(context).Do(
        {"examples": [examples]},
        {"statistics": [artifact(standard_artifacts.ExampleStatistics,
                                 os.path.join(out, "statistics"))]},
        {"stats_options_json": options.to_json(), "exclude_splits": "[]"})
    return {"seconds": time.perf_counter() - start,
            "examples": _count(source, split.SPLIT_NAMES)}
  if stage == "evaluation":
    from tfx.utils import proto_utils  # pylint: disable=g-import-not-at-top
    from components.evaluator import eval_config  # pylint: disable=g-import-not-at-top
    from components.evaluator import executor  # pylint: disable=g-import-not-at-top
    config = eval_config.make_eval_config(0.9, 0.002)
    start = time.perf_counter()
    executor.Executor(context).Do(
        {"examples": [examples],
         "model": [artifact(standard_artifacts.Model, model_uri)]},
        {"evaluation": [artifact(standard_artifacts.ModelEvaluation,
                                 os.path.join(out, "evaluation"))],
         "blessing": [artifact(standard_artifacts.ModelBlessing,
                               os.path.join(out, "blessing"))]},
        {"eval_config": proto_utils.proto_to_json(config),
         "example_splits": json.dumps(["eval"])})
    return {"seconds": time.perf_counter() - start,
            "examples": _count(source, ["eval"])}
  if stage == "statistics_floor":
    import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    options = tfdv.StatsOptions(sample_rate=1.0,
                                use_sketch_based_topk_uniques=True)
    start = time.perf_counter()
    for name in split.SPLIT_NAMES:  # StatisticsGen's splits: all of them
      tfdv.generate_statistics_from_tfrecord(
          os.path.join(source, f"Split-{name}", "*"), stats_options=options,
          output_path=os.path.join(out, name, "stats.tfrecord"),
          pipeline_options=pipeline_options.PipelineOptions(BEAM_ARGS))
    return {"seconds": time.perf_counter() - start,
            "examples": _count(source, split.SPLIT_NAMES)}
  if stage == "evaluation_floor":
    import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    from components import keras2  # pylint: disable=g-import-not-at-top
    from components.evaluator import eval_config  # pylint: disable=g-import-not-at-top
    keras2.skip_keras_internals()  # as the Evaluator does: the lower floor
    # A first run has no baseline: the change thresholds, which TFX's
    # executor rubber-stamps then, left out (plain TFMA refuses them).
    config = eval_config.make_eval_config(0.9, None,
                                          max_class_accuracy_drop=None)
    start = time.perf_counter()
    tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(
            os.path.join(model_uri, "Format-Serving"), eval_config=config),
        eval_config=config,
        data_location=os.path.join(source, "Split-eval", "*"),
        output_path=os.path.join(out, "evaluation"),
        pipeline_options=pipeline_options.PipelineOptions(BEAM_ARGS))
    return {"seconds": time.perf_counter() - start,
            "examples": _count(source, ["eval"])}
  raise ValueError(f"unknown stage {stage!r}")


def _count(examples_uri: str, splits) -> int:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = [f for name in splits for f in tf.io.gfile.glob(
      os.path.join(examples_uri, f"Split-{name}", "*"))]
  return int(sum(1 for _ in tf.data.TFRecordDataset(
      files, compression_type="GZIP", buffer_size=1 << 20)))


def run_stage(stage: str, source: str, out: str,
              model_uri: Optional[str] = None) -> Dict[str, Any]:
  os.makedirs(out, exist_ok=True)
  argv = [sys.executable, "-m", "tools.bench", "--stage", stage,
          "--source", source, "--out", out]
  if model_uri:
    argv += ["--model", model_uri]
  result = _run(argv, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  line = [l for l in result.pop("output").splitlines()
          if l.startswith("BENCH_STAGE ")][-1]
  stage_result = json.loads(line[len("BENCH_STAGE "):])
  seconds, examples = stage_result["seconds"], stage_result["examples"]
  return {"seconds": round(seconds, 2), "examples": examples,
          "us_per_example": round(seconds / examples * 1e6, 2),
          "peak_rss_gib": result["peak_rss_gib"],
          "process_wall_seconds": result["wall_seconds"]}


def bench_scaling(data_dir: str, out: str, model_uri: str,
                  base: float) -> Dict[str, Any]:
  results: Dict[str, Any] = {stage: {} for stage in STAGES}
  for scale in SCALES:
    print(f"[bench] scaling {scale}x ...", flush=True)
    source = make_scaled_dataset(data_dir, os.path.join(out, f"idx{scale}"),
                                 base * scale)
    examples = os.path.join(out, f"examples{scale}")
    results["ingestion"][scale] = run_stage("ingestion", source, examples)
    results["statistics"][scale] = run_stage(
        "statistics", examples, os.path.join(out, f"stats{scale}"))
    results["evaluation"][scale] = run_stage(
        "evaluation", examples, os.path.join(out, f"eval{scale}"), model_uri)
    shutil.rmtree(source)
    shutil.rmtree(examples)
  for stage in STAGES:
    one, eight = results[stage][SCALES[0]], results[stage][SCALES[-1]]
    results[stage]["time_per_example_8x_vs_1x"] = round(
        eight["us_per_example"] / one["us_per_example"], 3)
    results[stage]["peak_rss_8x_vs_1x"] = round(
        eight["peak_rss_gib"] / one["peak_rss_gib"], 3)
  return results


# --- 6. Floors: each Beam component against the plain library call. -------

FLOORS = (("StatisticsGen", "statistics_floor",
           "tfdv.generate_statistics_from_tfrecord, 3 splits"),
          ("Evaluator", "evaluation_floor",
           "tfma.run_model_analysis, same EvalConfig"))


def bench_floor(dag: Dict[str, Any], out: str) -> Dict[str, Any]:
  """The smallest plain-library calls doing StatisticsGen's and the
  Evaluator's work on the last pair's examples and model, each in a process
  of its own, timed inside it (imports excluded, as a component's seconds
  are); and the lower bound they put on the DAG-vs-script ratio: the
  script's wall plus those two calls, with no orchestration, no imports
  beyond the script's and nothing else (the Trainer's fit is already faster
  than the script's)."""
  import glob  # pylint: disable=g-import-not-at-top
  examples = sorted(glob.glob(os.path.join(
      dag["output_dir"], "pipelines", "*", "MnistExampleGen", "examples",
      "*")), key=lambda p: int(os.path.basename(p)))[-1]
  result: Dict[str, Any] = {}
  for component, stage, _ in FLOORS:
    print(f"[bench] floor: {component} as a plain library call ...",
          flush=True)
    result[component] = {
        "plain_seconds": run_stage(stage, examples, os.path.join(out, stage),
                                   dag["model_uri"])["seconds"],
        "dag_seconds": dag["component_seconds"].get(component)}
  script = dag["script"]["wall_seconds"]["median"]
  result["outside_components_seconds"] = round(
      dag["wall_seconds"]["median"] - sum(dag["component_seconds"].values()),
      1)
  result["ratio_floor"] = round(
      (script + sum(result[c]["plain_seconds"] for c, _, _ in FLOORS))
      / script, 2)
  return result


# --- 4. CNN epochs: the pipeline's Trainer against a plain Keras script. ---

# The CNN preset written out in plain Keras, trained the way a course script
# would (numpy arrays, the same 7:3 split, optimizer, batch size and
# callbacks); prints its epoch seconds and parameter count as JSON.
PLAIN_CNN_SCRIPT = r"""
import gzip, json, os, sys, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
import tf_keras as keras
data_dir, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def idx(name, offset):
  with gzip.open(os.path.join(data_dir, name + ".gz")) as f:
    return np.frombuffer(f.read(), np.uint8, offset=offset)
x = idx("train-images-idx3-ubyte", 16).reshape(-1, 784).astype("float32") / 255.0
y = idx("train-labels-idx1-ubyte", 8).astype("int64")
if limit:
  x, y = x[:limit], y[:limit]
order = np.random.default_rng(42).permutation(len(x))
cut = int(0.7 * len(x))
train, val = order[:cut], order[cut:]
keras.utils.set_random_seed(42)
L = keras.layers
def conv(filters):
  return [L.Conv2D(filters, 3, padding="same", use_bias=False),
          L.BatchNormalization(), L.Activation("relu")]
model = keras.Sequential(
    [L.Input((784,)), L.Reshape((28, 28, 1))] + conv(32) + conv(32) +
    [L.MaxPooling2D(), L.Dropout(0.25)] + conv(64) + conv(64) +
    [L.MaxPooling2D(), L.Dropout(0.25), L.Flatten(),
     L.Dense(256, activation="relu"), L.Dropout(0.5),
     L.Dense(10, activation="softmax")])
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
              ["accuracy"])
class Timer(keras.callbacks.Callback):
  seconds = []
  def on_epoch_begin(self, epoch, logs=None):
    self.start = time.perf_counter()
  def on_epoch_end(self, epoch, logs=None):
    self.seconds.append(round(time.perf_counter() - self.start, 3))
model.fit(x[train], y[train], batch_size=128, epochs=epochs,
          validation_data=(x[val], y[val]), verbose=2, callbacks=[
              keras.callbacks.ReduceLROnPlateau(patience=2, factor=0.5,
                                                min_lr=1e-5),
              keras.callbacks.EarlyStopping(patience=3,
                                            restore_best_weights=True),
              Timer()])
print("CNN_SCRIPT " + json.dumps({
    "epoch_seconds": Timer.seconds, "params": model.count_params(),
    "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU"}))
"""
CNN_EPOCHS = 3  # the first traces the model; the median of the others counts
CNN_CPU_MAX_EXAMPLES = 6000  # on a CPU (no target there): a short check


def run_plain_cnn_script(data_dir: str, epochs: int,
                         max_examples: int) -> Dict[str, Any]:
  result = _run([sys.executable, "-c", PLAIN_CNN_SCRIPT, data_dir,
                 str(epochs), str(max_examples)],
                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  line = [l for l in result.pop("output").splitlines()
          if l.startswith("CNN_SCRIPT ")][-1]
  return dict(result, **json.loads(line[len("CNN_SCRIPT "):]))


def steady_epoch_seconds(epoch_seconds: List[float]) -> float:
  """The median epoch after the first (which pays for tracing)."""
  return float(np.median(epoch_seconds[1:] or epoch_seconds))


def bench_cnn(data_dir: str, out: str, gpu: bool) -> Dict[str, Any]:
  """Goal 4: epoch seconds of the `cnn` preset inside `make run-local`'s
  DAG (its Trainer: tf.data input, the strategy, checkpoints, TensorBoard)
  against `PLAIN_CNN_SCRIPT`, one after the other on the same device. On a
  CPU, 6,000 images and no target: the goal is about GPUs."""
  max_examples = 0 if gpu else CNN_CPU_MAX_EXAMPLES
  env = dict(_dag_env(data_dir, os.path.join(out, "cnn"), CNN_EPOCHS,
                      max_examples), MODEL="cnn")
  summary = run_local(env)["summary"]
  with open(os.path.join(summary["run_dir"], "history.json")) as f:
    pipeline_epochs = json.load(f)["epoch_seconds"]
  with open(os.path.join(summary["run_dir"], "devices.json")) as f:
    device = json.load(f)["used"]
  with open(os.path.join(summary["run_dir"], "model_summary.txt")) as f:
    params = int([l for l in f if l.startswith("Total params:")][0]
                 .split()[2])
  script = run_plain_cnn_script(data_dir, CNN_EPOCHS, max_examples)
  if script["params"] != params:
    raise RuntimeError(
        f"PLAIN_CNN_SCRIPT's model has {script['params']:,} parameters, the "
        f"cnn preset {params:,}: write the preset's changes into the script")
  pipeline_s = steady_epoch_seconds(pipeline_epochs)
  script_s = steady_epoch_seconds(script["epoch_seconds"])
  return {"device": device, "script_device": script["device"],
          "examples": max_examples or "all", "epochs": CNN_EPOCHS,
          "pipeline_epoch_seconds": pipeline_epochs,
          "script_epoch_seconds": script["epoch_seconds"],
          "pipeline_params": params, "script_params": script["params"],
          "ratio": round(pipeline_s / script_s, 3)}


# --- Verdicts, table, pictures. ---------------------------------------------

def verdicts(results: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  dag = results["dag"]
  measured = {
      "dag_vs_script": spread(dag["ratios"])["median"],
      "unchanged_rerun_seconds": dag["unchanged_rerun"]["wall_seconds"],
  }
  for stage in STAGES:
    for key in ("time_per_example_8x_vs_1x", "peak_rss_8x_vs_1x"):
      measured[f"{stage}_{key}"] = results["scaling"][stage][key]
  cnn = results.get("cnn") or {}
  if cnn.get("device") == "GPU" and cnn.get("script_device") == "GPU":
    measured["gpu_cnn_epoch_vs_script"] = cnn["ratio"]
  if results.get("trainer"):
    measured["trainer_input_vs_numpy"] = min(
        r["ratio"] for r in results["trainer"].values())
  out = {}
  for key, (op, goal) in TARGETS.items():
    if key not in measured:
      out[key] = {"value": None, "target": f"{op} {goal}", "met": None}
      continue
    value = round(float(measured[key]), 3)
    met = value <= goal if op == "<=" else value >= goal
    out[key] = {"value": value, "target": f"{op} {goal}", "met": met}
  return out


def table(results: Dict[str, Any]) -> str:
  dag, script, v = results["dag"], results["dag"]["script"], results[
      "targets"]

  def verdict(key):
    met = v[key]["met"]
    return "not measured" if met is None else ("pass" if met else "FAIL")

  def figure(values, unit="s", digits=1):
    return (f"{values['median']:.{digits}f} {unit} ({values['min']:.{digits}f}"
            f"-{values['max']:.{digits}f})")

  rows = [
      (f"DAG vs plain Keras {script['keras'].split('.')[0]} script (wall; "
       f"median, range of {dag['pairs']} pairs)",
       f"{figure(dag['wall_seconds'])} vs {figure(script['wall_seconds'])}"
       f" = {figure(spread(dag['ratios']), 'x', 2)}", "<= 1.5x",
       verdict("dag_vs_script")),
      ("  the same script on Keras 2 (tf_keras), for the record",
       f"{results['script_tf_keras']['wall_seconds']:.1f} s"
       if results.get("script_tf_keras") else "not measured (--quick)",
       "", ""),
      ("  test accuracy: DAG / script",
       f"{dag['test_accuracy']:.4f} / {script['test_accuracy']:.4f}", "", ""),
      ("  DAG peak RSS / script peak RSS",
       f"{dag['peak_rss_gib']:.2f} / {script['peak_rss_gib']:.2f} GiB", "",
       ""),
  ]
  for node, seconds in dag["component_seconds"].items():
    if seconds >= 0.1:
      rows.append((f"    {node}", f"{seconds:.1f} s", "", ""))
  rows.append(("    (of which model.fit epochs; the script's)",
               f"{dag['fit_seconds']} s; {script.get('fit_seconds', '-')} s",
               "", ""))
  floor = results.get("floor")
  if floor:
    for component, _, call in FLOORS:
      rows.append((f"  floor: {component} vs {call}",
                   f"{floor[component]['dag_seconds']:.1f} vs "
                   f"{floor[component]['plain_seconds']:.1f} s", "", ""))
    rows += [("  DAG outside its components (start-up, imports, MLMD)",
              f"{floor['outside_components_seconds']:.1f} s", "", ""),
             ("  floor of the ratio: (script + both plain calls) / script",
              f"{floor['ratio_floor']:.2f}x", "", "")]
  push, own = dag["rerun_after_push"], dag["rerun_after_own_push"]
  rows += [
      ("rerun after its own push",
       f"{own['wall_seconds']:.1f} s (" + (
           "TFX not started: its model is the one in service"
           if own["tfx_skipped"] else "recomputed: "
           + (", ".join(own["recomputed"]) or "none")) + ")", "", ""),
      ("rerun after another push vs its Evaluator",
       f"{push['wall_seconds']:.1f} s vs "
       f"{push['component_seconds']['Evaluator']:.1f} s = "
       f"{push['wall_seconds'] / push['component_seconds']['Evaluator']:.2f}x"
       if push["component_seconds"].get("Evaluator") else
       "the Evaluator did not rerun", "", ""),
      ("unchanged rerun",
       f"{dag['unchanged_rerun']['wall_seconds']:.1f} s (" + (
           "TFX not started: nothing changed"
           if dag["unchanged_rerun"].get("tfx_skipped") else "recomputed: "
           + (", ".join(dag["unchanged_rerun"]["recomputed"]) or "none"))
       + ")",
       "<= 5 s", verdict("unchanged_rerun_seconds")),
  ]
  scaling = results["scaling"]
  for stage in STAGES:
    per = scaling[stage]
    one, eight = per[SCALES[0]], per[SCALES[-1]]
    rows += [
        (f"{stage}: time/example 8x vs 1x",
         f"{eight['us_per_example']:.1f} vs {one['us_per_example']:.1f} us "
         f"({eight['examples']:,} vs {one['examples']:,} ex) = "
         f"{per['time_per_example_8x_vs_1x']:.2f}x", "<= 1.25x",
         verdict(f"{stage}_time_per_example_8x_vs_1x")),
        (f"{stage}: peak RSS 8x vs 1x",
         f"{eight['peak_rss_gib']:.2f} vs {one['peak_rss_gib']:.2f} GiB = "
         f"{per['peak_rss_8x_vs_1x']:.2f}x", "<= 2x",
         verdict(f"{stage}_peak_rss_8x_vs_1x")),
    ]
  for name, r in (results.get("trainer") or {}).items():
    rows.append((f"trainer input {name}: tf.data vs numpy",
                 f"{r['pipeline_examples_per_second']:,} vs "
                 f"{r['numpy_examples_per_second']:,} ex/s = "
                 f"{r['ratio']:.2f}x", ">= 0.9x",
                 verdict("trainer_input_vs_numpy")))
  if not results.get("trainer"):
    rows.append(("trainer input: tf.data vs numpy", "skipped (--quick)",
                 ">= 0.9x", "not measured"))
  cnn = results.get("cnn")
  if cnn:
    rows.append((
        f"CNN epoch on {cnn['device']}: pipeline vs plain script",
        f"{steady_epoch_seconds(cnn['pipeline_epoch_seconds']):.2f} vs "
        f"{steady_epoch_seconds(cnn['script_epoch_seconds']):.2f} s "
        f"({cnn['examples']} images) = {cnn['ratio']:.2f}x",
        "<= 1.1x on GPU",
        verdict("gpu_cnn_epoch_vs_script") if cnn["device"] == "GPU" else
        "no target on CPU"))
  if not cnn or cnn["device"] != "GPU":
    rows.append(("CNN epoch on GPU: pipeline vs plain script",
                 "not measured: no GPU", "<= 1.1x", "not measured"))
  widths = [max(len(r[i]) for r in rows + [("figure", "value", "target",
                                            "verdict")]) for i in range(4)]
  line = lambda r: "| " + " | ".join(  # noqa: E731
      f"{c:<{w}}" for c, w in zip(r, widths)) + " |"
  return "\n".join([line(("figure", "value", "target", "verdict")),
                    line(tuple("-" * w for w in widths))] +
                   [line(r) for r in rows])


def plot_scaling(results: Dict[str, Any], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  scaling = results["scaling"]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
  for stage in STAGES:
    xs = [scaling[stage][s]["examples"] for s in SCALES]
    left.plot(xs, [scaling[stage][s]["seconds"] for s in SCALES], "o-",
              label=stage)
    right.plot(xs, [scaling[stage][s]["peak_rss_gib"] for s in SCALES],
               "o-", label=stage)
  left.set(xlabel="examples processed", ylabel="seconds",
           title="time (linear = straight line through 0)")
  right.set(xlabel="examples processed", ylabel="peak RSS (GiB)",
            title="peak memory of the stage's process", ylim=(0, None))
  left.set_ylim(0, None)
  for ax in (left, right):
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(f"scaling: training data x{', x'.join(map(str, SCALES))} "
               f"({results['machine']})")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_dag(results: Dict[str, Any], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  dag = results["dag"]
  names = [n for n, s in dag["component_seconds"].items() if s >= 0.1]
  seconds = [dag["component_seconds"][n] for n in names]
  names.append("(process start, imports, orchestration)")
  seconds.append(max(0.0, dag["wall_seconds"]["median"] - sum(seconds)))
  names.append("plain Keras 3 script (whole)")
  seconds.append(dag["script"]["wall_seconds"]["median"])
  fig, ax = plt.subplots(figsize=(9, 4.5))
  bars = ax.barh(names[::-1], seconds[::-1], color="#4c72b0")
  ax.bar_label(bars, fmt="%.1f s", padding=3)
  ax.set_xlabel("seconds")
  ax.set_title(f"make run-local, MNIST{' (quick)' if results['quick'] else ''}"
               f", dense_512, {dag['epochs']} epochs: "
               f"{dag['wall_seconds']['median']:.1f} s wall (median)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _gpus() -> List[str]:
  """The GPUs TensorFlow sees, in a process of its own (this one stays off
  the GPU the measured processes use)."""
  result = _run([sys.executable, "-c", "import json, tensorflow as tf; "
                 "print('GPUS', json.dumps([d.name for d in "
                 "tf.config.list_physical_devices('GPU')]))"],
                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  line = [l for l in result["output"].splitlines() if l.startswith("GPUS ")]
  return json.loads(line[-1][len("GPUS "):])


def profile_stage(stage: str, data_dir: str, out: str,
                  model_uri: Optional[str]) -> None:
  import cProfile  # pylint: disable=g-import-not-at-top
  import pstats  # pylint: disable=g-import-not-at-top
  source = data_dir
  if stage != "ingestion":
    source = os.path.join(out, "examples")
    stage_main("ingestion", data_dir, source, None)
  profiler = cProfile.Profile()
  profiler.enable()
  result = stage_main(stage, source, os.path.join(out, stage), model_uri)
  profiler.disable()
  print(f"{stage}: {result['seconds']:.2f} s")
  pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
  pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      default=bool(os.environ.get("BENCH_QUICK")))
  parser.add_argument("--stage", choices=STAGES + FLOOR_STAGES)
  parser.add_argument("--profile", choices=STAGES)
  parser.add_argument("--source")
  parser.add_argument("--out")
  parser.add_argument("--model")
  args = parser.parse_args(argv)
  if args.stage:  # one scaling stage, in its own process
    result = stage_main(args.stage, args.source, args.out, args.model)
    print("BENCH_STAGE " + json.dumps(result), flush=True)
    return 0
  data_dir = os.environ.get("BENCH_DATA_DIR") or os.path.join(
      DEFAULT_DATASETS_DIR, "mnist")
  if not os.path.isdir(data_dir):
    print(f"error: no MNIST IDX files at {data_dir}: set BENCH_DATA_DIR",
          file=sys.stderr)
    return 1
  if args.profile:
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
      profile_stage(args.profile, data_dir, tmp, args.model)
    return 0
  out_dir = os.environ.get("BENCH_OUTPUT_DIR") or os.path.join(
      REPO, "outputs", "bench")
  os.makedirs(out_dir, exist_ok=True)
  epochs = 1 if args.quick else 5
  max_examples = QUICK_MAX_EXAMPLES if args.quick else 0
  results: Dict[str, Any] = {
      "date": time.strftime("%Y-%m-%d"), "quick": args.quick,
      "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, "
                 f"{_memory_gib()} GiB, Python {platform.python_version()}",
  }
  started = time.perf_counter()
  with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
    results["dag"] = bench_dag(data_dir, tmp, epochs, max_examples,
                               pairs=1 if args.quick else PAIRS)
    if not args.quick:  # for the record, no target
      print("[bench] the plain script on Keras 2 (tf_keras) ...", flush=True)
      results["script_tf_keras"] = run_plain_script(
          data_dir, tmp, epochs, script=TF_KERAS_SCRIPT)
      results["floor"] = bench_floor(results["dag"],
                                     os.path.join(tmp, "floor"))
    base = QUICK_SCALING_BASE if args.quick else 1.0
    results["scaling"] = bench_scaling(
        data_dir, os.path.join(tmp, "scaling"), results["dag"]["model_uri"],
        base)
    results["scaling"]["base_fraction_of_mnist"] = base
    results["trainer"] = {}
    if not args.quick:
      print("[bench] trainer input vs numpy ...", flush=True)
      examples = os.path.join(tmp, "examples")
      run_stage("ingestion", data_dir, examples)
      results["trainer"] = bench_trainer(examples, list(TRAINER_BENCH))
  results["gpus"] = _gpus()
  if results["gpus"] or not args.quick:
    print("[bench] CNN epochs: the pipeline's Trainer vs a plain script ...",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cnn-") as tmp:
      results["cnn"] = bench_cnn(data_dir, tmp, gpu=bool(results["gpus"]))
  results["bench_seconds"] = round(time.perf_counter() - started, 1)
  results["targets"] = verdicts(results)
  with open(os.path.join(out_dir, "bench.json"), "w") as f:
    json.dump(results, f, indent=2, default=str)
  plot_scaling(results, os.path.join(out_dir, "bench.png"))
  plot_dag(results, os.path.join(out_dir, "dag.png"))
  print(f"\n{results['date']}, {results['machine']}"
        f"{', QUICK' if args.quick else ''} "
        f"({results['bench_seconds']:.0f} s)\n")
  print(table(results))
  missed = [k for k, v in results["targets"].items() if v["met"] is False]
  print(f"\ntargets missed: {', '.join(missed)}" if missed else
        "\nall measured targets met")
  print(f"written: {out_dir}/bench.json, {out_dir}/bench.png (scaling), "
        f"{out_dir}/dag.png")
  return 0


def _memory_gib() -> int:
  return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
               / 2**30)


if __name__ == "__main__":
  sys.exit(main())
