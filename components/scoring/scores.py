"""Accuracy, confusion matrix and sample predictions of a classifier over
batches of a split; pure numpy, no TFX."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

SAMPLE_COUNT = 25  # images in the report's grid
MAX_WRONG_SAMPLES = 10  # of which at most this many misclassified


@dataclasses.dataclass
class Samples:
  """A few test images with their true and predicted classes."""
  images: np.ndarray  # [n, 784] float32 in [0, 1]
  labels: np.ndarray  # [n]
  predicted: np.ndarray  # [n]


@dataclasses.dataclass
class Scores:
  accuracy: float
  count: int
  matrix: np.ndarray  # [true, predicted] counts
  samples: Samples


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray,
                     num_classes: int) -> np.ndarray:
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels, np.int64),
                     np.asarray(predicted, np.int64)), 1)
  return matrix


def score(classify: Callable[[np.ndarray], np.ndarray],
          batches: Iterable[Tuple[np.ndarray, np.ndarray]],
          num_classes: int, sample_count: int = SAMPLE_COUNT,
          max_wrong: int = MAX_WRONG_SAMPLES) -> Optional[Scores]:
  """Scores `classify` (images -> probabilities) over (images, labels)
  batches, holding one batch at a time; None if there were no examples.

  Samples: the first test images, with up to `max_wrong` misclassified ones
  (the first of them) in the last places.
  """
  matrix = np.zeros((num_classes, num_classes), np.int64)
  first: List[Tuple[np.ndarray, int, int]] = []
  wrong: List[Tuple[np.ndarray, int, int]] = []
  for images, labels in batches:
    predicted = np.argmax(classify(images), axis=1)
    matrix += confusion_matrix(labels, predicted, num_classes)
    for image, label, guess in zip(images, labels, predicted):
      if label != guess and len(wrong) < max_wrong:
        wrong.append((image, int(label), int(guess)))
      elif len(first) < sample_count:
        first.append((image, int(label), int(guess)))
      if len(wrong) >= max_wrong and len(first) >= sample_count:
        break
  count = int(matrix.sum())
  if not count:
    return None
  chosen = first[:max(0, sample_count - len(wrong))] + wrong
  samples = Samples(
      images=np.stack([c[0] for c in chosen]).reshape(len(chosen), -1),
      labels=np.array([c[1] for c in chosen]),
      predicted=np.array([c[2] for c in chosen]))
  return Scores(accuracy=float(np.trace(matrix) / count), count=count,
                matrix=matrix, samples=samples)


def to_kfp(matrix: np.ndarray, class_names: Sequence[str]) -> Dict[str, Any]:
  """The confusion matrix as KFP's `confusionMatrix` metadata (what the KFP
  SDK's `ClassificationMetrics.log_confusion_matrix` writes)."""
  return {"annotationSpecs": [{"displayName": str(n)} for n in class_names],
          "rows": [{"row": [int(c) for c in row]} for row in matrix]}


def from_kfp(value: Dict[str, Any]) -> Tuple[np.ndarray, List[str]]:
  """(matrix, class names) from KFP's `confusionMatrix` metadata."""
  names = [spec["displayName"] for spec in value["annotationSpecs"]]
  matrix = np.array([[int(c) for c in row["row"]] for row in value["rows"]],
                    np.int64)
  return matrix, names
