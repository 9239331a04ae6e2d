"""Figure 6 (no target): each component against its library's own compute
on the same data, in a process of its own, timed inside it as a
component's seconds are (imports excluded):

- StatisticsGen: TFDV's statistics generators fed the record batches of
  every split in this process (`components.statistics.in_process`, the
  pipeline's StatsOptions), no TFX;
- Evaluator: TensorFlow inference of the candidate over the eval split
  (its `serving_default` on the serialized examples, 1,000 at a time; a
  first run has no baseline) plus the gate's metrics computed on those
  predictions with tf_keras' metrics (accuracy and loss overall, accuracy
  per class, the example count), no TFMA, no Beam. Its accuracy must be
  the Evaluator's (to 1e-6), or the bench stops: the same work.

From them, the ratio no DAG doing these checks could beat: (script + both
floors) / script, with nothing else at all (no orchestration, no imports
beyond the script's)."""
from __future__ import annotations

import glob
import os
import time
from typing import Any, Callable, Dict, List

from tools.bench import stages
from tools.bench.pairs import Row

FLOORS = (("StatisticsGen", "statistics_floor",
           "TFDV's generators in process, 3 splits"),
          ("Evaluator", "evaluation_floor",
           "TF inference + the gate's metrics, eval split"))
FLOOR_STAGES = tuple(stage for _, stage, _ in FLOORS)
INFERENCE_BATCH = 1000


def stage_main(stage: str, source: str, out: str,
               model_uri: str) -> Dict[str, Any]:
  """One floor in this process (called as `--stage`)."""
  if stage == "statistics_floor":
    return _statistics_floor(source, out)
  if stage == "evaluation_floor":
    return _evaluation_floor(source, model_uri)
  raise ValueError(f"unknown floor {stage!r}")


def _statistics_floor(source: str, out: str) -> Dict[str, Any]:
  from components.ingestion import split  # pylint: disable=g-import-not-at-top
  from components.statistics import component  # pylint: disable=g-import-not-at-top
  from components.statistics import in_process  # pylint: disable=g-import-not-at-top
  options = component.stats_options()
  examples = 0
  start = time.perf_counter()
  for name in split.SPLIT_NAMES:  # StatisticsGen's splits: all of them
    statistics = in_process.statistics_of(
        os.path.join(source, f"Split-{name}", "*"), options)
    examples += sum(d.num_examples for d in statistics.datasets)
    os.makedirs(os.path.join(out, name), exist_ok=True)
    with open(os.path.join(out, name, "FeatureStats.pb"), "wb") as f:
      f.write(statistics.SerializeToString())
  return {"seconds": time.perf_counter() - start, "examples": examples}


def _evaluation_floor(source: str, model_uri: str) -> Dict[str, Any]:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  from components.ingestion import examples_io  # pylint: disable=g-import-not-at-top
  from components.trainer import export  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(source, "Split-eval", "*")))
  start = time.perf_counter()
  model = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
  serve = model.signatures["serving_default"]
  labels, probabilities = [], []
  for batch in tf.data.TFRecordDataset(
      files, compression_type="GZIP").batch(INFERENCE_BATCH):
    probabilities.append(serve(examples=batch)[export.OUTPUT_KEY].numpy())
    labels.append(tf.io.parse_example(batch, {
        examples_io.LABEL_KEY: examples_io.FEATURE_SPEC[
            examples_io.LABEL_KEY]})[examples_io.LABEL_KEY].numpy())
  inference = time.perf_counter() - start
  y = np.concatenate(labels).reshape(-1)
  p = np.concatenate(probabilities)
  metrics = {}
  for name, mask in [("overall", np.ones_like(y, bool))] + [
      (f"class {c}", y == c) for c in range(p.shape[1])]:
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    accuracy.update_state(y[mask], p[mask])
    loss = keras.metrics.SparseCategoricalCrossentropy()
    loss.update_state(y[mask], p[mask])
    metrics[name] = (int(mask.sum()), float(accuracy.result()),
                     float(loss.result()))
  seconds = time.perf_counter() - start
  return {"seconds": seconds, "examples": int(len(y)),
          "inference_seconds": inference,
          "metrics_seconds": seconds - inference,
          "accuracy": metrics["overall"][1]}


def bench_floor(dag: Dict[str, Any], out: str) -> Dict[str, Any]:
  """Each floor on the last pair's examples and model, against the DAG's
  component; and the lower bound they put on the DAG-vs-script ratio."""
  examples = sorted(glob.glob(os.path.join(
      dag["output_dir"], "pipelines", "*", "MnistExampleGen", "examples",
      "*")), key=lambda p: int(os.path.basename(p)))[-1]
  result: Dict[str, Any] = {}
  for component, stage, _ in FLOORS:
    print(f"[bench] floor: {component}'s library compute in process ...",
          flush=True)
    floor = stages.run_stage(stage, examples, os.path.join(out, stage),
                             dag["model_uri"])
    if ("accuracy" in floor and dag.get("eval_accuracy") is not None and
        abs(floor["accuracy"] - dag["eval_accuracy"]) > 1e-6):
      raise RuntimeError(
          f"the evaluation floor's accuracy is {floor['accuracy']}, the "
          f"Evaluator's {dag['eval_accuracy']}: not the same work")
    result[component] = {
        "floor_seconds": floor["seconds"],
        "dag_seconds": dag["component_seconds"].get(component),
        **{k: round(v, 2) for k, v in floor.items()
           if k in ("inference_seconds", "metrics_seconds")}}
  script = dag["script"]["wall_seconds"]["median"]
  result["outside_components_seconds"] = round(
      dag["wall_seconds"]["median"] - dag["busy_seconds"], 1)
  result["ratio_floor"] = round(
      (script + sum(result[c]["floor_seconds"] for c, _, _ in FLOORS))
      / script, 2)
  return result


def rows(results: Dict[str, Any], verdict: Callable[[str], str]
         ) -> List[Row]:
  """The table's rows of figure 6 (none after --quick)."""
  del verdict  # no targets
  floor = results.get("floor")
  if not floor:
    return []
  out: List[Row] = []
  for component, _, call in FLOORS:
    f = floor[component]
    detail = (f" (inference {f['inference_seconds']:.1f} s, metrics "
              f"{f['metrics_seconds']:.1f} s)" if "inference_seconds" in f
              else "")
    ratio = (f" = {f['dag_seconds'] / f['floor_seconds']:.1f}x"
             if f["dag_seconds"] and f["floor_seconds"] else "")
    dag_seconds = ("-" if f["dag_seconds"] is None else
                   f"{f['dag_seconds']:.1f}")
    out.append((f"  floor: {component} vs {call}",
                f"{dag_seconds} vs {f['floor_seconds']:.1f} s{ratio}{detail}",
                "", ""))
  out += [("  DAG outside its components (start-up, imports, MLMD)",
           f"{floor['outside_components_seconds']:.1f} s", "", ""),
          ("  floor of the ratio: (script + both floors) / script",
           f"{floor['ratio_floor']:.2f}x", "", "")]
  return out
