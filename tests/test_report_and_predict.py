"""The run report and `predict`: what a person reads and runs."""
import numpy as np
import pytest
import tf_keras as keras

from components.ingestion import idx
from components.trainer import export
from pipeline import cli
from pipeline import predict
from pipeline import report


def _summary(**overrides):
  summary = {
      "pipeline": "mnist-tfx-fashion-mnist", "run_id": "r1",
      "dataset": "fashion_mnist", "source": "idx:/data",
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
      "test_accuracy": {"candidate": 0.97, "baseline": 0.99},
      "baseline_model": "/p/Trainer/model/3", "min_accuracy": 0.8,
      "max_accuracy_drop": 0.001, "components": {
          "Trainer": {"state": "COMPLETE", "seconds": 12.0}},
      "pushed_to": None, "run_dir": None}
  summary.update(overrides)
  return summary


def test_report_shows_verdict_metrics_side_by_side_and_pictures(tmp_path):
  rng = np.random.default_rng(0)
  labels = np.arange(10)
  probs = np.eye(10)[labels[::-1]]  # every prediction but two wrong
  images = rng.random((10, 784)).astype(np.float32)
  path = report.write_report(
      _summary(), "not pushed: accuracy 0.9712 < baseline 0.9893 − 0.001",
      str(tmp_path), (probs, labels, images))
  text = open(path).read()
  assert "**Verdict:** not pushed: accuracy 0.9712 < baseline 0.9893" in text
  assert "| accuracy (eval) | 0.9712 | 0.9893 |" in text
  assert "| accuracy (official test) | 0.9700 | 0.9900 |" in text
  assert "| 9 Ankle boot | 1.0000 |" in text
  assert "| train | 42 |" in text
  for picture in ("confusion_matrix.png", "sample_predictions.png"):
    with open(tmp_path / "report" / picture, "rb") as f:
      assert f.read(4) == b"\x89PNG"
    assert f"(report/{picture})" in text


def test_report_says_when_there_was_no_baseline(tmp_path):
  summary = _summary(baseline_model=None)
  summary["evaluation"]["baseline"] = {}
  text = open(report.write_report(summary, "pushed to x", str(tmp_path))).read()
  assert "No baseline" in text


def test_sample_grid_shows_misclassified_images_last():
  labels = np.zeros(40, np.int64)
  predicted = labels.copy()
  predicted[[3, 30, 35]] = 1
  chosen = report.sample_indices(labels, predicted, count=25)
  assert len(chosen) == 25
  assert chosen[-3:] == [3, 30, 35]
  assert chosen[:22] == [i for i in range(23) if i != 3]


def test_confusion_matrix_counts():
  matrix = report.confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
  assert matrix.tolist() == [[1, 1], [0, 1]]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
  """A tiny model that predicts class 7 for bright images, 0 for dark."""
  inputs = keras.Input((784,), name="image")
  mean = keras.layers.Lambda(lambda x: keras.backend.mean(x, axis=1,
                                                          keepdims=True))(inputs)
  logits = keras.layers.Dense(10, kernel_initializer=keras.initializers.Constant(
      [[-20.0] + [0.0] * 6 + [20.0] + [0.0] * 2]),
                              bias_initializer="zeros")(mean)
  outputs = keras.layers.Softmax(name="probabilities")(logits)
  model = keras.Model(inputs, outputs)
  path = str(tmp_path_factory.mktemp("model") / "1")
  export.export_saved_model(model, path)
  return path


def test_predict_idx_file(saved_model, tmp_path, capsys):
  images = np.zeros((3, 28, 28), np.uint8)
  images[1] = 255
  path = str(tmp_path / "t10k-images-idx3-ubyte.gz")
  idx.write_idx(path, images)
  assert cli.main(["predict", path, "--model-dir", saved_model]) == 0
  out = capsys.readouterr().out
  assert "t10k-images-idx3-ubyte.gz[0]  predicted 0 '0'" in out
  assert "t10k-images-idx3-ubyte.gz[1]  predicted 7 '7'" in out
  assert "probabilities:" in out


def test_predict_png_converts_colour_size_and_fashion_names(
    saved_model, tmp_path, monkeypatch, capsys):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  png = str(tmp_path / "shoe.png")
  Image.new("RGB", (56, 56), (0, 0, 0)).save(png)  # dark: class 0
  gray = str(tmp_path / "bright.png")
  Image.new("L", (28, 28), 255).save(gray)  # light background: inverted
  monkeypatch.setenv("DATASET", "fashion_mnist")
  assert cli.main(["predict", png, gray, "--model-dir", saved_model]) == 0
  out = capsys.readouterr().out
  assert "shoe.png    predicted 0 'T-shirt/top'" in out
  assert "converted RGB to grayscale; resized 56x56 to 28x28" in out
  assert "inverted (dark on light)" in out


@pytest.mark.parametrize("content, problem", [
    (b"", "not an image file"),
    (b"GIF89a not really", "not an image file"),
])
def test_predict_refuses_bad_images_in_one_line(saved_model, tmp_path, capsys,
                                                content, problem):
  bad = tmp_path / "bad.png"
  bad.write_bytes(content)
  assert cli.main(["predict", str(bad), "--model-dir", saved_model]) == 1
  err = capsys.readouterr().err.strip()
  assert err == f"error: {bad}: {problem} PIL can read"


def test_predict_refuses_bad_idx_and_missing_model(saved_model, tmp_path,
                                                   capsys):
  labels = str(tmp_path / "labels-idx1-ubyte")
  idx.write_idx(labels, np.zeros(3, np.uint8))
  assert cli.main(["predict", labels, "--model-dir", saved_model]) == 1
  assert "wrong IDX magic number" in capsys.readouterr().err
  assert cli.main(["predict", labels, "--model-dir", str(tmp_path)]) == 1
  assert capsys.readouterr().err.strip() == (
      f"error: {labels}: wrong IDX magic number 0x00000801, expected "
      "0x00000803 (images file)")
  images = str(tmp_path / "images-idx3-ubyte")
  idx.write_idx(images, np.zeros((2, 28, 28), np.uint8))
  assert cli.main(["predict", images, "--model-dir", str(tmp_path)]) == 1
  assert capsys.readouterr().err.strip() == (
      f"error: {tmp_path}: no saved_model.pb: not a SavedModel")


def test_predict_without_any_pushed_model_says_what_to_do(tmp_path):
  with pytest.raises(idx.DataError, match="run `make run-local` first"):
    predict.latest_pushed_model(str(tmp_path / "serving" / "mnist"))


def test_verdict_sentences():
  from pipeline import summary as summary_lib  # pylint: disable=g-import-not-at-top
  rejected = _summary(pushed=False)
  assert summary_lib.verdict(rejected) == (
      "not pushed: accuracy 0.9712 < baseline 0.9893 \u2212 0.001 "
      "(test accuracy 0.9700)")
  too_low = _summary(pushed=False, baseline_model=None, min_accuracy=0.98)
  too_low["evaluation"]["baseline"] = {}
  assert summary_lib.verdict(too_low).startswith(
      "not pushed: accuracy 0.9712 < minimum 0.98")
  pushed = _summary(pushed=True, new_version=True, pushed_to="/s/mnist/7")
  assert summary_lib.verdict(pushed) == \
      "pushed to /s/mnist/7 (test accuracy 0.9700)"
  same = _summary(pushed=True, new_version=False, pushed_to="/s/mnist/7")
  assert summary_lib.verdict(same).startswith(
      "blessed; already in service as /s/mnist/7")
