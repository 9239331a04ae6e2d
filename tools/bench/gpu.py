"""Figure 4, the GPU's: the `cnn` preset's epoch seconds inside the DAG's
Trainer against the same network in a plain Keras script, on the same
device one after the other (on a CPU: 6,000 images, no target)."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, List

import numpy as np

from tools.bench import common
from tools.bench import pairs
from tools.bench.pairs import Row

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
  result = common.run_process(
      [sys.executable, "-c", PLAIN_CNN_SCRIPT, data_dir, str(epochs),
       str(max_examples)], env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
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
  env = dict(pairs.dag_env(data_dir, os.path.join(out, "cnn"), CNN_EPOCHS,
                           max_examples), MODEL="cnn")
  summary = pairs.run_local(env)["summary"]
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


def rows(results: Dict[str, Any], verdict: Callable[[str], str]
         ) -> List[Row]:
  """The table's rows of figure 4."""
  out: List[Row] = []
  cnn = results.get("cnn")
  if cnn:
    out.append((
        f"CNN epoch on {cnn['device']}: pipeline vs plain script",
        f"{steady_epoch_seconds(cnn['pipeline_epoch_seconds']):.2f} vs "
        f"{steady_epoch_seconds(cnn['script_epoch_seconds']):.2f} s "
        f"({cnn['examples']} images) = {cnn['ratio']:.2f}x",
        "<= 1.1x on GPU",
        verdict("gpu_cnn_epoch_vs_script") if cnn["device"] == "GPU" else
        "no target on CPU"))
  if not cnn or cnn["device"] != "GPU":
    out.append(("CNN epoch on GPU: pipeline vs plain script",
                 "not measured: no GPU", "<= 1.1x", "not measured"))
  return out
