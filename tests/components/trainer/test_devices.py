"""A Trainer asked for GPUs that sees none fails in one line instead of
training on the CPU; the devices used are recorded."""
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from components.trainer import devices

GPUS = [g.name for g in tf.config.list_physical_devices("GPU")]


def test_check_gpus_says_what_is_missing():
  devices.check_gpus(0, [], cuda_libraries=False)  # CPU training: fine
  devices.check_gpus(1, ["/physical_device:GPU:0"], cuda_libraries=True)
  with pytest.raises(devices.NoGpuError, match=r"^TRAINER_GPUS=1 but "
                     r"TensorFlow sees 0 GPU\(s\); no CUDA libraries are "
                     r"installed .*make install GPU=1"):
    devices.check_gpus(1, [], cuda_libraries=False)
  with pytest.raises(devices.NoGpuError, match=r"sees 1 GPU\(s\); the CUDA "
                     r"libraries are installed but no GPU is usable"):
    devices.check_gpus(2, ["/physical_device:GPU:0"], cuda_libraries=True)


@pytest.mark.slow
@pytest.mark.skipif(bool(GPUS), reason="a GPU is visible here")
@pytest.mark.e2e
def test_run_asking_for_a_gpu_on_a_cpu_machine_fails_in_one_line(
    fake_data_dir, tmp_path):
  """`make run-local TRAINER_GPUS=1` without a GPU: exit 1, one error line
  naming the problem, nothing pushed."""
  env = dict(os.environ, DATASET="mnist", DATA_DIR=fake_data_dir,
             OUTPUT_DIR=str(tmp_path), MODEL="dense_100_relu", EPOCHS="1",
             MIN_ACCURACY="0", TRAINER_GPUS="1", KERAS_PROGRESS="epoch")
  done = subprocess.run([sys.executable, "-m", "pipeline.local_runner"],
                        env=env, capture_output=True, text=True, timeout=600,
                        check=False)
  assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
  errors = [l for l in done.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1
  assert "NoGpuError: TRAINER_GPUS=1 but TensorFlow sees 0 GPU(s)" in errors[0]
  assert not os.path.exists(tmp_path / "serving" / "mnist")


def test_trainer_records_the_devices_it_used(fake_data_dir, tmp_path):
  """devices.json in the run directory: what training ran on."""
  from components.trainer import hparams, task  # pylint: disable=g-import-not-at-top
  from tests.conftest import ingested_files  # pylint: disable=g-import-not-at-top
  files = ingested_files(fake_data_dir, tmp_path)
  task.train(hparams.TrainerConfig(model="dense_100_relu", epochs=1),
             files["train"], files["eval"], str(tmp_path / "model"),
             str(tmp_path / "run"))
  recorded = json.load(open(tmp_path / "run" / devices.DEVICES_FILE))
  assert recorded["used"] == ("GPU" if GPUS else "CPU")
  assert [g["name"] for g in recorded["gpus"]] == GPUS
  assert recorded["replicas"] == max(1, len(GPUS))
  assert recorded["tensorflow"] == tf.__version__ == "2.16.2"
