"""The run report: what a person reads (Markdown and HTML) and the verdict
sentence, from a run's summary."""
import re

import numpy as np

from components.report import render
from components.report import summary as summary_lib
from components.scoring import scores

REFUSAL = ("not pushed: accuracy 0.9712 < baseline 0.9893 \u2212 0.001")


def _summary(**overrides):
  summary = {
      "pipeline": "mnist-tfx-fashion-mnist", "run_id": "r1",
      "dataset": "fashion_mnist", "source": "idx:/data",
      "source_verified": True,
      "class_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
      "model": {"model": "cnn", "optimizer": "adam", "learning_rate": 0.001,
                "epochs": 12, "batch_size": 128},
      "split_counts": {"train": 42, "eval": 18, "test": 10},
      "class_histograms": {"train": [4] * 10, "eval": [2] * 10,
                           "test": [1] * 10},
      "evaluation": {
          "candidate": {"sparse_categorical_accuracy": 0.9712,
                        "sparse_categorical_crossentropy": 0.1},
          "baseline": {"sparse_categorical_accuracy": 0.9893,
                       "sparse_categorical_crossentropy": 0.05},
          "per_class_accuracy": {"0": 0.9, "9": 1.0}},
      "refusal": REFUSAL,
      "test_accuracy": {"candidate": 0.97, "baseline": 0.99},
      "baseline_model": "/p/Trainer/model/3", "min_accuracy": 0.8,
      "max_accuracy_drop": 0.001, "components": {
          "Trainer": {"state": "COMPLETE", "started": 1.2, "seconds": 12.0},
          "MnistExampleGen": {"state": "CACHED", "started": 0.0,
                              "seconds": 0.1}},
      "pushed": False, "pushed_to": None, "run_dir": None}
  summary.update(overrides)
  summary["verdict"] = summary_lib.verdict(summary)
  return summary


def _write(summary, directory):
  labels = np.arange(10)
  samples = scores.Samples(images=np.random.default_rng(0).random(
      (10, 784)).astype(np.float32), labels=labels, predicted=labels[::-1])
  matrix = scores.confusion_matrix(labels, labels[::-1], 10)
  pictures = render.draw_pictures(summary, str(directory / "report"),
                                  confusion=matrix, samples=samples)
  return render.write_report(summary, str(directory), "Model: dense",
                             pictures)


def test_report_shows_verdict_metrics_side_by_side_and_pictures(tmp_path):
  texts = _write(_summary(), tmp_path)
  text = (tmp_path / "report.md").read_text()
  assert ("**Verdict:** not pushed: accuracy 0.9712 < baseline 0.9893 "
          "\u2212 0.001 (test accuracy 0.9700)") in text
  assert "| accuracy (eval) | 0.9712 | 0.9893 |" in text
  assert "| accuracy (official test) | 0.9700 | 0.9900 |" in text
  assert "| 9 Ankle boot | 1.0000 |" in text
  assert "| train | 42 |" in text
  assert "| MnistExampleGen | CACHED | 0.0 | 0.1 |" in text
  assert "| Trainer | COMPLETE | 1.2 | 12.0 |" in text
  for picture in ("confusion_matrix.png", "sample_predictions.png"):
    assert (tmp_path / "report" / picture).read_bytes()[:4] == b"\x89PNG"
    assert f"(report/{picture})" in text
  # The Markdown artifact and the HTML page carry their pictures inline.
  assert "(report/" not in texts["markdown"]
  assert texts["markdown"].count("](data:image/png;base64,") == 2
  html = (tmp_path / "report.html").read_text()
  assert html == texts["html"]
  assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 2
  assert "<table>" in html and "report/" not in html


def test_report_says_when_there_was_no_baseline_and_no_durations(tmp_path):
  summary = _summary(baseline_model=None, components=None)
  summary["evaluation"]["baseline"] = {}
  _write(summary, tmp_path)
  text = (tmp_path / "report.md").read_text()
  assert "No baseline" in text
  assert "Kubeflow Pipelines UI" in text  # no ML Metadata of ours there


def test_verdict_sentences_come_from_the_gate_and_the_push():
  assert _summary()["verdict"] == REFUSAL + " (test accuracy 0.9700)"
  pushed = _summary(pushed=True, new_version=True, pushed_to="/s/mnist/7")
  assert pushed["verdict"] == "pushed to /s/mnist/7 (test accuracy 0.9700)"
  same = _summary(pushed=True, new_version=False, pushed_to="/s/mnist/7")
  assert same["verdict"].startswith("blessed; already in service as /s/mnist/7")
  superseded = _summary(pushed=True, new_version=False, pushed_to="/s/mnist/7",
                        succeeded_by="9")
  assert superseded["verdict"] == ("blessed; pushed earlier as /s/mnist/7, "
                                   "since succeeded by version 9 (test "
                                   "accuracy 0.9700)")
  assert summary_lib.outcome(pushed) == "pushed"
  assert summary_lib.outcome(_summary()) == REFUSAL
