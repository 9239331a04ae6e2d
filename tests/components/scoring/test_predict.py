"""`mnist-tfx predict`: classifying images with a pushed SavedModel."""
import numpy as np
import pytest
import tf_keras as keras

import mnist_tfx as cli
from components.ingestion import idx
from components.scoring import predict
from components.trainer import export


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
