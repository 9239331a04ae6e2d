"""What the pipeline knows about each dataset: files, checksums, class names
and the gate's default numbers. Adding a dataset: a `DatasetInfo` here and
its schema in `schemas/<name>/schema.pbtxt`; nothing else names it."""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

# Both datasets: 28x28 grayscale images (uint8 in the IDX files), 10 classes.
IMAGE_SHAPE = (28, 28)
IMAGE_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static facts about one dataset in the official IDX format."""
  name: str
  class_names: Tuple[str, ...]
  # Where the official files can be fetched from when online.
  download_url: str
  # sha256 of each file's *uncompressed* bytes, keyed by IDX file stem.
  sha256: Dict[str, str]
  # sha256 of each official split's examples in any order (`train`,
  # `test`; `sources.content_digest`): checks data that comes without the
  # files, such as a TFDS copy, which stores the examples in its own order.
  content_sha256: Dict[str, str]
  # The gate's defaults (`components.evaluator.settings.GateSettings`):
  # the accuracy a model must reach on `eval` (MIN_ACCURACY), and how much
  # one class may lose against the baseline (MAX_CLASS_ACCURACY_DROP).
  min_accuracy: float
  max_class_accuracy_drop: float
  # Whether the class names are the digits themselves (MNIST): messages then
  # say "class 7", not "class 7 (7)".
  digit_classes: bool = False


IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

DATASETS: Dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        class_names=tuple(str(d) for d in range(10)),
        download_url="https://storage.googleapis.com/cvdf-datasets/mnist/",
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        content_sha256={
            "train": "3655811c0e1223700a4714a92a51f55bd215ed7dc1fa2baa4326a2b58042d82d",
            "test": "634538fb34c5277fce98470b8b285d1e8419eb87f328da42ef1faf690d2c3911",
        },
        # Measured for both datasets on three retrainings (seeds 1-3) of a
        # dense_512-like net, 5 epochs, 18,000 held-out images: one class
        # moved by up to 0.022 between equally good MNIST models (so 0.05),
        # and by up to 0.119 on Fashion-MNIST (pullover; so 0.2).
        min_accuracy=0.90,
        max_class_accuracy_drop=0.05,
        digit_classes=True,
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        download_url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        sha256={
            "train-images-idx3-ubyte": "a8adc57f677927963cb0586145c4a453f381f1ef90c933cb3043e3196ba65bcc",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "4be2ed5e8b4d8ec15414037406eaff205ff050ccabefbf78cca097a19238fda9",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        content_sha256={
            "train": "8238446121233f092d7827e55fcf68e6abb8dd318c8bd539afefc41481b05ed4",
            "test": "81b9dc38d2df886b1ab846ac9a2d50a67b7ae9419060afc1eccbea45dd9f939a",
        },
        min_accuracy=0.80,
        max_class_accuracy_drop=0.2,
    ),
}


def get_dataset_info(name: str) -> DatasetInfo:
  """Returns the `DatasetInfo` for `name`, or raises a one-line ValueError."""
  try:
    return DATASETS[name]
  except KeyError:
    raise ValueError(
        f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None
