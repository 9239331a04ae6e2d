"""Training curves as the course plots them: loss and accuracy per epoch."""
from __future__ import annotations

import io
from typing import Dict, List

import matplotlib
import tensorflow as tf

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def plot_history(history: Dict[str, List[float]], path: str,
                 title: str = "") -> None:
  """Writes a PNG with loss and accuracy, train vs validation."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  epochs = [e + 1 for e in history.get("epoch", [])] or range(
      1, len(history.get("loss", [])) + 1)
  for ax, metric in zip(axes, ("loss", "accuracy")):
    if metric in history:
      ax.plot(epochs, history[metric], "o-", label=f"training {metric}")
    if f"val_{metric}" in history:
      ax.plot(epochs, history[f"val_{metric}"], "s--",
              label=f"validation {metric}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch")
    ax.grid(True, alpha=0.3)
    ax.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100)
  plt.close(fig)
  # Through tf.io.gfile: the run directory may be on gs:// or s3://.
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(buffer.getvalue())
