"""The comparison page of `make compare`: compare.md, compare.html (its
pictures inlined) and compare.json, from the entries `pipeline.compare`
collects (one per model)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import ticker  # pylint: disable=g-import-not-at-top,wrong-import-position

from components.report import render  # pylint: disable=g-import-not-at-top,wrong-import-position

MARKDOWN_FILE = "compare.md"
HTML_FILE = "compare.html"
JSON_FILE = "compare.json"
CURVES_FILE = "validation_curves.png"
ACCURACY_FILE = "accuracy.png"


def plot_validation_curves(entries: List[Dict[str, Any]], path: str) -> None:
  """Validation accuracy and loss per epoch, one line per model; a ring on
  the epoch each model exported (the best by validation accuracy)."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for n, entry in enumerate(entries):
    history = entry.get("history") or {}
    epochs = [e + 1 for e in history.get("epoch", [])]
    color = plt.get_cmap("tab10")(n % 10)
    for ax, metric in zip(axes, ("val_accuracy", "val_loss")):
      values = history.get(metric) or []
      if not values:
        continue
      xs = epochs[:len(values)] or list(range(1, len(values) + 1))
      ax.plot(xs, values, "o-", color=color, label=entry["model"])
      best = history.get("best_epoch")
      if best is not None and best in history.get("epoch", []):
        i = history["epoch"].index(best)
        ax.plot([xs[i]], [values[i]], "o", markersize=12, mfc="none",
                color=color)
  for ax, metric in zip(axes, ("validation accuracy", "validation loss")):
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch (eval split)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_accuracy(entries: List[Dict[str, Any]], path: str) -> None:
  """Accuracy per model on the eval split and the official test split."""
  fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(entries) + 2), 4))
  xs = range(len(entries))
  values = []
  for offset, key, label in ((-0.2, "eval_accuracy", "eval"),
                             (0.2, "test_accuracy", "official test")):
    heights = [e.get(key) or 0.0 for e in entries]
    values += [h for h in heights if h]
    bars = ax.bar([x + offset for x in xs], heights, width=0.4, label=label)
    ax.bar_label(bars, fmt="%.4f", fontsize=7)
  ax.set_xticks(list(xs), [e["model"] for e in entries], rotation=15,
                ha="right")
  ax.set_ylabel("accuracy")
  low = min(values) if values else 0.0
  ax.set_ylim(max(0.0, low - 0.05), 1.0)
  ax.set_title("accuracy per model")
  ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _fmt(value: Optional[float], digits: int = 4) -> str:
  return "–" if value is None else f"{value:.{digits}f}"


def render_markdown(result: Dict[str, Any], pictures: Dict[str, str]) -> str:
  """The page's text; `pictures`: {caption: address (file or data: URI)}."""
  entries = result["models"]
  counts = {k: f"{v:,}" if isinstance(v, int) else v
            for k, v in (result.get("split_counts") or {}).items()}
  lines = [
      f"# Model comparison: {result['dataset']}",
      "",
      f"{len(entries)} models trained one after the other by the pipeline "
      f"`{result['pipeline']}` on the same split (train "
      f"{counts.get('train')}, eval {counts.get('eval')}, official test "
      f"{counts.get('test')} images); the gate decided each push as on any "
      "run. Accuracy on eval is TFMA's (the exported epoch, the best by "
      "validation accuracy); the official test split decides nothing.",
      "",
      "| model | optimizer | learning rate | batch | epochs run (best) | "
      "eval accuracy | test accuracy | training | run | verdict |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for e in entries:
    best = e.get("best_epoch")
    epochs = f"{e.get('epochs_run')} ({'–' if best is None else best + 1})"
    training = f"{_fmt(e.get('training_seconds'), 1)} s" + (
        "" if e.get("trained_now") else " (cached)")
    lines.append(
        f"| `{e['model']}` | {e.get('optimizer')} | {e.get('learning_rate'):g}"
        f" | {e.get('batch_size')} | {epochs} | {_fmt(e.get('eval_accuracy'))}"
        f" | {_fmt(e.get('test_accuracy'))} | {training} | "
        f"{_fmt(e.get('run_seconds'), 1)} s | {e.get('verdict')} |")
  lines += [
      "",
      "Training: the Trainer's epochs (history.json), the same when the "
      "model came from the cache; run: this pipeline run, end to end.",
      "",
  ]
  for caption, address in pictures.items():
    lines += [f"## {caption}", "", f"![{caption}]({address})", ""]
  lines += ["Runs: " + ", ".join(f"`{e['run_id']}`" for e in entries)
            + " (`make runs` lists every run of this output directory; "
            "`make tensorboard` shows their curves and settings).", ""]
  return "\n".join(lines)


def write_page(result: Dict[str, Any], directory: str) -> Dict[str, str]:
  """Writes compare.json, the pictures, compare.md and compare.html into
  `directory`; returns {kind: path}."""
  os.makedirs(directory, exist_ok=True)
  plot_validation_curves(result["models"], os.path.join(directory,
                                                        CURVES_FILE))
  plot_accuracy(result["models"], os.path.join(directory, ACCURACY_FILE))
  pictures = {"Accuracy per model": ACCURACY_FILE,
              "Validation curves (ringed: the exported epoch)": CURVES_FILE}
  paths = {"json": os.path.join(directory, JSON_FILE),
           "markdown": os.path.join(directory, MARKDOWN_FILE),
           "html": os.path.join(directory, HTML_FILE)}
  with open(paths["json"], "w") as f:
    json.dump(result, f, indent=2, default=str)
  with open(paths["markdown"], "w") as f:
    f.write(render_markdown(result, pictures))
  inlined = {caption: render.data_uri(os.path.join(directory, name))
             for caption, name in pictures.items()}
  with open(paths["html"], "w") as f:
    f.write(render.render_html(render_markdown(result, inlined),
                               f"Model comparison: {result['dataset']}"))
  return paths
