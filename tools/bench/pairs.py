"""Figures 1 and 2: the whole DAG against the plain script a user would
write instead, in interleaved pairs; then its reruns (after its own push,
after another push, unchanged)."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Callable, Dict, List, Tuple

from tools.bench import common

PAIRS = 3  # interleaved (DAG, script) pairs; --quick: 1
# --quick: the DAG and the script on this many training images (1 epoch).
QUICK_MAX_EXAMPLES = 6000
Row = Tuple[str, str, str, str]  # a table row: figure, value, target, verdict

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


def run_plain_script(data_dir: str, out: str, epochs: int,
                     max_examples: int = 0,
                     script: str = KERAS3_SCRIPT) -> Dict[str, Any]:
  """`script` (default `KERAS3_SCRIPT`) as a user runs it: a process of its
  own, on the installed TensorFlow (Keras 3 unless the script says
  otherwise: this process's Keras 2 switch is not passed on)."""
  target = tempfile.mkdtemp(dir=out, prefix="script")
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  result = common.run_process(
      [sys.executable, "-c", script, data_dir, target, str(epochs),
       str(max_examples)], env=dict(env, TF_CPP_MIN_LOG_LEVEL="3"))
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


def run_local(env: Dict[str, str]) -> Dict[str, Any]:
  """One `python -m pipeline.local_runner`: wall seconds, peak RSS, summary."""
  result = common.run_process(
      [sys.executable, "-m", "pipeline.local_runner"], env=env)
  output = result.pop("output")
  with open(os.path.join(env["OUTPUT_DIR"], "summary.json")) as f:
    result["summary"] = json.load(f)
  # Nothing changed since the last finished run: TFX was not started.
  result["summary"]["unchanged"] = "unchanged since run" in output
  return result


def dag_env(data_dir: str, out: str, epochs: int,
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


def component_seconds(summary: Dict[str, Any]) -> Dict[str, float]:
  return {n: c["seconds"] for n, c in summary["components"].items()}


def timeline(summary: Dict[str, Any]) -> Dict[str, List[float]]:
  """{component: [started, seconds]} of the components that ran."""
  return {n: [c["started"], c["seconds"]]
          for n, c in summary["components"].items()
          if c.get("started") is not None and c.get("seconds")}


def busy_seconds(summary: Dict[str, Any]) -> float:
  """Seconds in which at least one component ran (components that ran side
  by side count once): the union of their [started, started + seconds]."""
  total, end = 0.0, float("-inf")
  for start, seconds in sorted(timeline(summary).values()):
    stop = start + seconds
    total += max(0.0, stop - max(start, end))
    end = max(end, stop)
  return round(total, 2)


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
    env = dag_env(data_dir, os.path.join(out, f"pair{pair}"), epochs,
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
                                  component_seconds(summary)),
            "recomputed": ([] if summary.get("unchanged") else
                           summary["recomputed_components"])}

  walls = [r["wall_seconds"] for r in firsts]
  script_walls = [s["wall_seconds"] for s in scripts]
  components = {n: common.spread([component_seconds(r["summary"]).get(n)
                                  or 0.0 for r in firsts])["median"]
                for n in component_seconds(first)}
  return {
      "model": "dense_512", "epochs": epochs, "max_examples": max_examples,
      "pairs": pairs,
      "test_accuracy": first["test_accuracy"]["candidate"],
      "eval_accuracy": first.get("evaluation", {}).get("candidate", {}).get(
          "sparse_categorical_accuracy"),
      "model_uri": first["candidate_model"],
      "output_dir": env["OUTPUT_DIR"],
      "wall_seconds": common.spread(walls),
      "component_seconds": components,
      "busy_seconds": common.spread(
          [busy_seconds(r["summary"]) for r in firsts])["median"],
      "timeline": timeline(first),  # the last pair's run
      "fit_seconds": round(fit_seconds, 1),
      "peak_rss_gib": max(r["peak_rss_gib"] for r in firsts),
      "script": {"wall_seconds": common.spread(script_walls),
                 "peak_rss_gib": max(s["peak_rss_gib"] for s in scripts),
                 "test_accuracy": scripts[-1]["test_accuracy"],
                 "fit_seconds": common.spread(
                     [x["fit_seconds"] for x in scripts])["median"],
                 "keras": scripts[-1]["keras"]},
      "ratios": [round(d / s, 3) for d, s in zip(walls, script_walls)],
      "rerun_after_own_push": rerun(runs[1]),
      "rerun_after_push": rerun(runs[2]),
      "unchanged_rerun": rerun(runs[3]),
  }


def _figure(values, unit="s", digits=1):
  return (f"{values['median']:.{digits}f} {unit} ({values['min']:.{digits}f}"
          f"-{values['max']:.{digits}f})")


def dag_rows(results: Dict[str, Any], verdict: Callable[[str], str]
             ) -> List[Row]:
  """The table's rows of figure 1: the pairs, the DAG's components."""
  dag, script = results["dag"], results["dag"]["script"]
  figure = _figure
  rows = [
      (f"DAG vs plain Keras {script['keras'].split('.')[0]} script (wall; "
       f"median, range of {dag['pairs']} pairs)",
       f"{figure(dag['wall_seconds'])} vs {figure(script['wall_seconds'])}"
       f" = {figure(common.spread(dag['ratios']), 'x', 2)}", "<= 1.5x",
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
  return rows


def rerun_rows(results: Dict[str, Any], verdict: Callable[[str], str]
               ) -> List[Row]:
  """The table's rows of figure 2: the reruns."""
  dag = results["dag"]
  push, own = dag["rerun_after_push"], dag["rerun_after_own_push"]
  return [
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


def plot_dag(results: Dict[str, Any], path: str) -> None:
  """The last pair's run as a timeline: each component from its start, side
  by side where they overlapped; below, the whole process and the script."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  dag = results["dag"]
  timeline = sorted(((n, start, seconds) for n, (start, seconds)
                     in dag.get("timeline", {}).items() if seconds >= 0.1),
                    key=lambda row: row[1])
  rows = [(n, start, seconds, "#4c72b0") for n, start, seconds in timeline]
  rows.append(("DAG process, whole (median)", 0.0,
               dag["wall_seconds"]["median"], "#8c8c8c"))
  rows.append(("plain Keras 3 script, whole (median)", 0.0,
               dag["script"]["wall_seconds"]["median"], "#dd8452"))
  fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
  labels = [r[0] for r in rows][::-1]
  bars = ax.barh(labels, [r[2] for r in rows][::-1],
                 left=[r[1] for r in rows][::-1],
                 color=[r[3] for r in rows][::-1])
  ax.bar_label(bars, labels=[f"{r[2]:.1f} s" for r in rows][::-1],
               padding=3)  # the length, not where the bar ends
  ax.set_xlabel("seconds (components: from the run's first component)")
  ax.set_title(f"make run-local, MNIST{' (quick)' if results['quick'] else ''}"
               f", dense_512, {dag['epochs']} epochs: "
               f"{dag['wall_seconds']['median']:.1f} s wall (median)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
