"""Load a pushed (or any) SavedModel and classify images with it, like the
course's `model.predict` + `argmax` example (`mnist-tfx predict`).

Inputs: an IDX images file (gzipped or raw) or PNG files. PNGs that are not
28x28 grayscale are converted (colour to gray, resized to 28x28) and say so;
dark-on-light images are inverted to MNIST's light-on-dark. Anything else is
refused with a one-line error naming the file.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from components.ingestion import datasets
from components.ingestion import idx


@dataclasses.dataclass
class LoadedImage:
  name: str
  pixels: np.ndarray  # float32 [28, 28] in [0, 1]
  notes: List[str]


def load_png(path: str) -> LoadedImage:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise idx.DataError(path, "file not found")
  try:
    with Image.open(path) as image:
      image.load()
      notes = []
      if image.mode not in ("L", "1"):
        notes.append(f"converted {image.mode} to grayscale")
      gray = image.convert("L")
      if gray.size != (28, 28):
        notes.append(f"resized {gray.size[0]}x{gray.size[1]} to 28x28")
        gray = gray.resize((28, 28), Image.LANCZOS)
  except UnidentifiedImageError:
    raise idx.DataError(path, "not an image file PIL can read") from None
  except OSError as e:
    raise idx.DataError(path, f"cannot read image ({e})") from None
  pixels = np.asarray(gray, np.float32) / 255.0
  border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
  if border.mean() > 0.5:
    pixels = 1.0 - pixels
    notes.append("inverted (dark on light)")
  return LoadedImage(os.path.basename(path), pixels, notes)


def load_images(paths: Sequence[str], limit: Optional[int] = None
                ) -> List[LoadedImage]:
  """Images from IDX files and/or PNG files, in order."""
  images: List[LoadedImage] = []
  for path in paths:
    if path.lower().endswith(".png"):
      images.append(load_png(path))
      continue
    array = idx.parse_images(idx.read_bytes(path), path)
    for i, pixels in enumerate(array[:limit] if limit else array):
      images.append(LoadedImage(f"{os.path.basename(path)}[{i}]",
                                pixels.astype(np.float32) / 255.0, []))
  if not images:
    raise idx.DataError(", ".join(paths) or "<none>", "no images given")
  return images


def load_classifier(model_dir: str) -> Callable[[np.ndarray], np.ndarray]:
  """A SavedModel's `serving_images` signature as a function from float
  images in [0,1] ([N,28,28] or [N,784]) to class probabilities [N,10]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.trainer import export  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
    raise idx.DataError(model_dir, "no saved_model.pb: not a SavedModel")
  serve = tf.saved_model.load(model_dir).signatures[export.IMAGES_SIGNATURE]

  def classify(images: np.ndarray) -> np.ndarray:
    return serve(images=tf.constant(images, tf.float32))[
        export.OUTPUT_KEY].numpy()
  return classify


def predict(model_dir: str, images: List[LoadedImage]) -> np.ndarray:
  """Class probabilities [N, 10] from the model's `serving_images` signature."""
  return load_classifier(model_dir)(np.stack([image.pixels
                                              for image in images]))


def format_predictions(images: List[LoadedImage], probabilities: np.ndarray,
                       class_names: Sequence[str]) -> str:
  """One line per image, then the probability table."""
  lines = []
  width = max(len(image.name) for image in images)
  for image, probs in zip(images, probabilities):
    best = int(np.argmax(probs))
    note = f"  ({'; '.join(image.notes)})" if image.notes else ""
    lines.append(f"{image.name:<{width}}  predicted {best} "
                 f"{class_names[best]!r}  p={probs[best]:.3f}{note}")
  lines += ["", "probabilities:"]
  header = " ".join(f"{c[:7]:>7}" for c in class_names)
  lines.append(f"{'':<{width}}  {header}")
  for image, probs in zip(images, probabilities):
    lines.append(f"{image.name:<{width}}  " +
                 " ".join(f"{p:7.3f}" for p in probs))
  return "\n".join(lines)


def latest_pushed_model(serving_model_dir: str) -> str:
  from serving import versions  # pylint: disable=g-import-not-at-top
  latest = versions.latest_version_dir(serving_model_dir)
  if latest is None:
    raise idx.DataError(serving_model_dir, "no pushed model version yet: run "
                        "`make run-local` first or give MODEL_DIR=")
  return latest


def run(paths: Sequence[str], model_dir: str, dataset: str,
        limit: Optional[int] = None) -> Tuple[str, np.ndarray]:
  images = load_images(paths, limit)
  probabilities = predict(model_dir, images)
  names = datasets.get_dataset_info(dataset).class_names
  return format_predictions(images, probabilities, names), probabilities
