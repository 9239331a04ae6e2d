"""Which devices the Trainer trains on, and the check that a Trainer asked
for GPUs really has them (instead of silently training on the CPU)."""
from __future__ import annotations

import ctypes.util
import importlib.util
import platform
from typing import Any, Dict, List

DEVICES_FILE = "devices.json"  # in the Trainer's run directory


class NoGpuError(RuntimeError):
  """GPUs were asked for (TRAINER_GPUS) but TensorFlow sees fewer."""


def cuda_libraries_installed() -> bool:
  """Whether the CUDA and cuDNN libraries TensorFlow loads are installed:
  NVIDIA's wheels (requirements-gpu.lock) or a system cuDNN."""
  return (importlib.util.find_spec("nvidia") is not None and
          importlib.util.find_spec("nvidia.cudnn") is not None) or bool(
              ctypes.util.find_library("cudnn"))


def check_gpus(required: int, visible: List[str], cuda_libraries: bool
               ) -> None:
  """Raises NoGpuError, in one line, when fewer than `required` GPUs are
  visible; says whether this installation can use a GPU at all."""
  if required <= len(visible):
    return
  if not cuda_libraries:
    why = ("no CUDA libraries are installed (the CPU variant): install with "
           "`make install GPU=1`, or on Kubeflow set GPU_IMAGE= to an image "
           "built with `make image GPU=1`")
  else:
    why = ("the CUDA libraries are installed but no GPU is usable: check the NVIDIA "
           "driver (nvidia-smi) and that the node has the GPU scheduled")
  raise NoGpuError(f"TRAINER_GPUS={required} but TensorFlow sees "
                   f"{len(visible)} GPU(s); {why}")


def describe(strategy_replicas: int) -> Dict[str, Any]:
  """The devices training used, for the summary and the report."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = []
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    gpus.append({"name": gpu.name,
                 "model": details.get("device_name", "unknown"),
                 "compute_capability": ".".join(
                     map(str, details.get("compute_capability", ()) or ()))})
  return {"gpus": gpus, "replicas": strategy_replicas,
          "used": "GPU" if gpus else "CPU",
          "cpu": platform.processor() or platform.machine(),
          "tensorflow": tf.__version__,
          "cuda_libraries": cuda_libraries_installed()}
