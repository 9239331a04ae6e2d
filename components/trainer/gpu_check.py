"""`make gpu-check`: the devices TensorFlow sees, and a short training
throughput of the CNN preset on each kind (GPU if any, and CPU), on random
images, through the Trainer's own model builder and compile step."""
from __future__ import annotations

import json
import time

import components  # noqa: F401  pylint: disable=unused-import  (Keras 2)
import numpy as np
import tensorflow as tf

from components.trainer import devices
from components.trainer import models

IMAGES = 12_800
BATCH = 128


def throughput(device: str) -> float:
  """Training images per second of the CNN on `device` (after a warm-up
  epoch that pays for tracing)."""
  rng = np.random.default_rng(0)
  x = rng.random((IMAGES, models.IMAGE_PIXELS), dtype=np.float32)
  y = rng.integers(0, models.NUM_CLASSES, IMAGES)
  with tf.device(device):
    model = models.build_model(models.get_preset("cnn"))
    models.compile_model(model, "adam")
    model.fit(x[:BATCH * 4], y[:BATCH * 4], batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    return IMAGES / (time.perf_counter() - start)


def main() -> None:
  gpus = tf.config.list_physical_devices("GPU")
  print("devices:", json.dumps(devices.describe(len(gpus) or 1)))
  for device in (["/GPU:0"] if gpus else []) + ["/CPU:0"]:
    print(f"cnn training on {device}: {throughput(device):,.0f} images/s "
          f"({IMAGES:,} random images, batch {BATCH})", flush=True)
  if not gpus:
    print("no GPU visible" + ("" if devices.cuda_libraries_installed() else
                              "; no CUDA libraries installed (make install "
                              "GPU=1)"))


if __name__ == "__main__":
  main()
