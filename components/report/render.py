"""The human-readable run report: Markdown, a self-contained HTML page, and
the pictures (matplotlib PNGs) they show."""
from __future__ import annotations

import base64
import html
import os
from typing import Any, Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
PICTURES_DIR = "report"  # beside report.md


def plot_confusion_matrix(matrix: np.ndarray, class_names: List[str],
                          path: str, title: str) -> None:
  fig, ax = plt.subplots(figsize=(7.5, 6.5))
  image = ax.imshow(matrix, cmap="Blues")
  ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
  ax.set_yticks(range(len(class_names)), class_names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  threshold = matrix.max() / 2
  for (row, col), count in np.ndenumerate(matrix):
    ax.text(col, row, str(count), ha="center", va="center", fontsize=7,
            color="white" if count > threshold else "black")
  ax.set_title(title)
  fig.colorbar(image, ax=ax)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_samples(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                 class_names: List[str], path: str) -> None:
  """A grid of test images titled 'predicted (true)'; errors in red."""
  cols = 5
  rows = max(1, int(np.ceil(len(labels) / cols)))
  # Tickless axes and a fixed layout: tight_layout over 25 titled axes took
  # most of the report's second.
  fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows),
                           subplot_kw={"xticks": [], "yticks": []})
  for slot, ax in enumerate(np.atleast_1d(axes).ravel()):
    ax.axis("off")
    if slot >= len(labels):
      continue
    ax.imshow(images[slot].reshape(28, 28), cmap="binary")
    wrong = predicted[slot] != labels[slot]
    ax.set_title(f"{class_names[predicted[slot]]} ({class_names[labels[slot]]})",
                 color="red" if wrong else "black", fontsize=9,
                 fontweight="bold" if wrong else "normal")
  height = 2.2 * rows  # inches
  fig.suptitle("test images: predicted (true); misclassified in red",
               y=1 - 0.2 / height)
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02,
                      top=1 - 0.75 / height, wspace=0.1, hspace=0.3)
  fig.savefig(path, dpi=100)
  plt.close(fig)


TRIAL_COLUMNS = ("family", "dense_layers", "units", "activation", "dropout",
                 "optimizer", "learning_rate", "batch_size")


def _learning_rate(trial: Dict[str, Any]) -> Optional[float]:
  """A trial's learning rate (the search samples a factor of the optimizer's
  default)."""
  if "learning_rate" in trial or "learning_rate_scale" not in trial:
    return trial.get("learning_rate")
  from components.trainer import models  # pylint: disable=g-import-not-at-top
  return models.tuned_preset(trial).learning_rate


def plot_trials(trials: List[Dict[str, Any]], path: str) -> None:
  """Validation accuracy of each Tuner trial (in trial order), coloured by
  optimizer."""
  trials = sorted(trials, key=lambda t: str(t.get("trial_id")))
  optimizers = sorted({str(t.get("optimizer")) for t in trials})
  colors = plt.get_cmap("tab10")
  fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(trials) + 2), 3.2))
  for i, optimizer in enumerate(optimizers):
    xs = [n for n, t in enumerate(trials) if str(t.get("optimizer")) ==
          optimizer]
    ax.bar(xs, [trials[n].get("score") or 0 for n in xs], color=colors(i),
           label=optimizer)
  ax.set_xticks(range(len(trials)))
  ax.set_xticklabels([str(t.get("trial_id")) for t in trials])
  ax.set_xlabel("trial")
  ax.set_ylabel("validation accuracy")
  scores = [t.get("score") or 0 for t in trials]
  ax.set_ylim(max(0.0, min(scores) - 0.05), min(1.0, max(scores) + 0.02))
  ax.legend(title="optimizer", fontsize=8, loc="upper left",
            bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _trials_table(tuning: Dict[str, Any]) -> List[str]:
  lines = ["## Tuning", "",
           f"Best of {len(tuning.get('trials') or [])} Tuner trials by "
           f"{tuning.get('objective')}: `{tuning.get('best_hyperparameters')}`"
           " (trained above).", "",
           "| trial | val accuracy | " + " | ".join(TRIAL_COLUMNS) + " |",
           "| --- | --- | " + " | ".join("---" for _ in TRIAL_COLUMNS) + " |"]
  for trial in tuning.get("trials") or []:
    cells = []
    for column in TRIAL_COLUMNS:
      value = (_learning_rate(trial) if column == "learning_rate" else
               trial.get(column))
      value = "–" if value is None else value
      cells.append(f"{value:.2g}" if isinstance(value, float) else str(value))
    lines.append(f"| {trial.get('trial_id')} | {_fmt(trial.get('score'))} | "
                 + " | ".join(cells) + " |")
  return lines + [""]


def _fmt(value: Optional[float]) -> str:
  return "–" if value is None else f"{value:.4f}"


def _count(number, noun: str) -> str:
  return f"{number} {noun}{'' if number == 1 else 's'}"


def _model_name(model: Dict[str, Any]) -> str:
  tuned = model.get("hyperparameters")
  return f"tuned {tuned.get('family', 'dense')}" if tuned else str(
      model.get("model"))


def render_markdown(summary: Dict[str, Any], model_summary: Optional[str],
                    pictures: Dict[str, str]) -> str:
  """The report text; `pictures` maps a caption to the picture's address
  (a path relative to the report, or a data: URI)."""
  names = summary.get("class_names") or [str(i) for i in range(10)]
  evaluation = summary.get("evaluation") or {}
  candidate = evaluation.get("candidate") or {}
  baseline = evaluation.get("baseline") or {}
  test = summary.get("test_accuracy") or {}
  has_baseline = bool(summary.get("baseline_model"))
  model = summary.get("model") or {}
  lines = [
      f"# Run report: {summary['pipeline']}",
      "",
      (f"Run `{summary['run_id']}`" if summary.get("run_id") else "Run") +
      f" on **{summary['dataset']}**, model "
      f"**{_model_name(model)}** ({model.get('optimizer')}, learning rate "
      f"{model.get('learning_rate')}, {_count(model.get('epochs'), 'epoch')}, "
      f"batch {model.get('batch_size')}).",
      "",
      f"**Verdict:** {summary.get('verdict')}",
      "",
      "## Metrics",
      "",
      "| metric | candidate | baseline |",
      "| --- | --- | --- |",
      f"| accuracy (eval) | {_fmt(candidate.get('sparse_categorical_accuracy'))}"
      f" | {_fmt(baseline.get('sparse_categorical_accuracy'))} |",
      f"| loss (eval) | {_fmt(candidate.get('sparse_categorical_crossentropy'))}"
      f" | {_fmt(baseline.get('sparse_categorical_crossentropy'))} |",
      f"| accuracy (official test) | {_fmt(test.get('candidate'))} | "
      f"{_fmt(test.get('baseline'))} |",
      "",
      f"Thresholds: accuracy ≥ {summary.get('min_accuracy')}"
      + (f", and ≥ baseline − {summary.get('max_accuracy_drop')}. Baseline: "
         f"the model in service, `{summary.get('baseline_version')}`."
         if has_baseline else
         ". No baseline: no model was in service yet, so the value threshold "
         "alone decided."),
      "",
      "## Data",
      "",
      f"Source: `{summary.get('source')}` "
      + ("(the official files, sha256 verified)"
         if summary.get("source_verified") else
         "(**unverified**: not the official files of this dataset)"),
      "",
      "| split | examples | " + " | ".join(names) + " |",
      "| --- | --- | " + " | ".join("---" for _ in names) + " |",
  ]
  histograms = summary.get("class_histograms") or {}
  for split, count in (summary.get("split_counts") or {}).items():
    lines.append(f"| {split} | {count} | " + " | ".join(
        str(c) for c in histograms.get(split, [])) + " |")
  per_class = evaluation.get("per_class_accuracy") or {}
  if per_class:
    lines += ["", "## Per-class accuracy (eval)", "",
              "| class | accuracy |", "| --- | --- |"]
    for label in sorted(per_class, key=int):
      name = names[int(label)]
      title = str(label) if name == str(label) else f"{label} {name}"
      lines.append(f"| {title} | {_fmt(per_class[label])} |")
  if summary.get("tuning"):
    lines += [""] + _trials_table(summary["tuning"])
  if pictures:
    lines += ["", "## Pictures", ""]
    for caption, path in pictures.items():
      lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
  if model_summary:
    lines += ["## Model", "", "```", model_summary.strip(), "```", ""]
  trained_on = summary.get("training_devices")
  if trained_on:
    gpus = ", ".join(f"{g['name']} ({g['model']})" for g in trained_on["gpus"])
    lines += [f"Trained on: {gpus or 'CPU (' + trained_on['cpu'] + ')'}, "
              f"{trained_on['replicas']} replica(s), TensorFlow "
              f"{trained_on['tensorflow']}.", ""]
  lines += ["## Components", ""]
  components = summary.get("components")
  if components:
    lines += ["From ML Metadata; CACHED: reused from an earlier run. "
              "Started: seconds after the run's first component (components "
              "whose inputs were ready ran side by side).", "",
              "| component | state | started | seconds |",
              "| --- | --- | --- | --- |"]
    for node, info in components.items():
      started, seconds = info.get("started"), info.get("seconds")
      lines.append(f"| {node} | {info.get('state')} | "
                   f"{'–' if started is None else started} | "
                   f"{'–' if seconds is None else seconds} |")
  else:
    lines.append("Each component's state and time: the run's graph in the "
                 "Kubeflow Pipelines UI.")
  lines += ["", f"Pushed model: `{summary.get('pushed_to') or '–'}`",
            f"Training run directory: `{summary.get('run_dir')}`", ""]
  return "\n".join(lines)


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 85%; }
code { font-size: 90%; }
"""


def render_html(markdown_text: str, title: str) -> str:
  """A self-contained HTML page of the Markdown report (pictures must be
  data: URIs already)."""
  import markdown  # pylint: disable=g-import-not-at-top
  body = markdown.markdown(markdown_text,
                           extensions=["tables", "fenced_code"])
  return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
          f"\n<title>{html.escape(title)}</title>\n<style>{HTML_STYLE}</style>"
          f"\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def data_uri(png_path: str) -> str:
  with open(png_path, "rb") as f:
    return "data:image/png;base64," + base64.b64encode(f.read()).decode()


def draw_pictures(summary: Dict[str, Any], pictures_dir: str,
                  training_curves: Optional[str] = None,
                  confusion: Optional[np.ndarray] = None,
                  samples=None) -> Dict[str, str]:
  """Writes the report's PNGs into the local `pictures_dir`; returns
  {caption: file name}. `training_curves`: the Trainer's PNG (a local
  copy); `samples`: `scoring.scores.Samples` of the official test split."""
  os.makedirs(pictures_dir, exist_ok=True)
  names = summary.get("class_names") or [str(i) for i in range(10)]
  pictures: Dict[str, str] = {}
  if training_curves and os.path.exists(training_curves):
    pictures["Training curves"] = "training_curves.png"
    if os.path.abspath(training_curves) != os.path.abspath(
        os.path.join(pictures_dir, "training_curves.png")):
      with open(training_curves, "rb") as src, open(
          os.path.join(pictures_dir, "training_curves.png"), "wb") as dst:
        dst.write(src.read())
  trials = (summary.get("tuning") or {}).get("trials")
  if trials:
    plot_trials(trials, os.path.join(pictures_dir, "tuner_trials.png"))
    pictures["Tuner trials: validation accuracy by optimizer"] = (
        "tuner_trials.png")
  if confusion is not None:
    plot_confusion_matrix(confusion, names,
                          os.path.join(pictures_dir, "confusion_matrix.png"),
                          "confusion matrix, official test split")
    pictures["Confusion matrix (official test split)"] = "confusion_matrix.png"
  if samples is not None:
    plot_samples(samples.images, samples.labels, samples.predicted, names,
                 os.path.join(pictures_dir, "sample_predictions.png"))
    pictures["Sample test predictions"] = "sample_predictions.png"
  return pictures


def write_report(summary: Dict[str, Any], directory: str,
                 model_summary: Optional[str] = None,
                 pictures: Optional[Dict[str, str]] = None) -> Dict[str, str]:
  """Writes `report.md` (pictures in `report/`) and `report.html` (pictures
  inlined) into the local `directory`, whose `report/` already holds the
  pictures; returns {"markdown": self-contained Markdown, "html": ...}."""
  pictures = pictures or {}
  pictures_dir = os.path.join(directory, PICTURES_DIR)
  relative = {caption: f"{PICTURES_DIR}/{name}"
              for caption, name in pictures.items()}
  inlined = {caption: data_uri(os.path.join(pictures_dir, name))
             for caption, name in pictures.items()}
  with open(os.path.join(directory, MARKDOWN_FILE), "w") as f:
    f.write(render_markdown(summary, model_summary, relative))
  markdown_inlined = render_markdown(summary, model_summary, inlined)
  page = render_html(markdown_inlined, f"Run report: {summary['pipeline']}")
  with open(os.path.join(directory, HTML_FILE), "w") as f:
    f.write(page)
  return {"markdown": markdown_inlined, "html": page}
