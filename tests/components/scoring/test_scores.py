"""Test-split scoring: accuracy, confusion matrix and samples, and the
confusion matrix in exactly the shape the KFP UI reads."""
import numpy as np

from components.scoring import scores


def _batches(labels, predicted, batch=7):
  """(images, labels) batches and a classifier that predicts `predicted`:
  each image carries its index in pixel 0."""
  images = np.zeros((len(labels), 784), np.float32)
  images[:, 0] = np.arange(len(labels))

  def classify(batch_images):
    return np.eye(10)[predicted[batch_images[:, 0].astype(int)]]
  return classify, [(images[i:i + batch], labels[i:i + batch])
                    for i in range(0, len(labels), batch)]


def test_scores_over_batches_equal_whole_split_figures():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 100)
  predicted = np.where(rng.random(100) < 0.8, labels, (labels + 1) % 10)
  classify, batches = _batches(labels, predicted)
  result = scores.score(classify, batches, num_classes=10)
  assert result.count == 100
  assert result.accuracy == np.mean(labels == predicted)
  assert result.matrix.sum() == 100
  assert np.trace(result.matrix) == np.sum(labels == predicted)
  # Rows are true labels, columns predictions: every miss is one class off.
  assert np.sum(labels != predicted) > 0
  for label in range(10):
    misses = np.sum((labels == label) & (predicted != labels))
    assert result.matrix[label, (label + 1) % 10] == misses
    assert result.matrix[(label + 1) % 10, label] == 0


def test_samples_show_misclassified_images_last():
  labels = np.zeros(40, np.int64)
  predicted = labels.copy()
  predicted[[3, 30, 35]] = 1
  classify, batches = _batches(labels, predicted)
  samples = scores.score(classify, batches, num_classes=10).samples
  shown = samples.images[:, 0].astype(int).tolist()  # the indices
  assert len(shown) == 25
  assert shown[-3:] == [3, 30, 35]
  assert shown[:22] == [i for i in range(23) if i != 3]
  assert samples.predicted[-3:].tolist() == [1, 1, 1]


def test_empty_split_scores_nothing():
  assert scores.score(lambda x: x, [], num_classes=10) is None


def test_confusion_matrix_is_what_the_kfp_sdk_writes():
  from kfp.dsl.types import artifact_types  # pylint: disable=g-import-not-at-top
  names = ["T-shirt/top", "Trouser", "Pullover"]
  matrix = np.array([[5, 1, 0], [0, 7, 0], [2, 0, 4]])
  sdk = artifact_types.ClassificationMetrics()
  sdk.log_confusion_matrix(names, matrix.tolist())
  assert scores.to_kfp(matrix, names) == sdk.metadata["confusionMatrix"]
  back, back_names = scores.from_kfp(scores.to_kfp(matrix, names))
  assert back.tolist() == matrix.tolist() and back_names == names
