"""A Trainer whose run has failed elsewhere (the concurrent runner's data
checks) stops after its current batch and exports nothing."""
import os

import pytest

from components import cancellation
from components.trainer import hparams
from components.trainer import task
from tests.conftest import ingested_files


def test_training_stops_after_a_batch_once_the_run_has_failed(
    tmp_path, fake_data_dir):
  files = ingested_files(fake_data_dir, tmp_path)
  cancellation.request_stop("ValidationGate failed")
  try:
    with pytest.raises(cancellation.RunStopped,
                       match="^training stopped: ValidationGate failed$"):
      task.train(hparams.TrainerConfig(model="dense_100_relu", epochs=200),
                 files["train"], files["eval"], str(tmp_path / "model"),
                 str(tmp_path / "run"))
  finally:
    cancellation.clear()
  assert not os.path.exists(tmp_path / "model")
  assert not os.path.exists(tmp_path / "run" / task.HISTORY_FILE)
