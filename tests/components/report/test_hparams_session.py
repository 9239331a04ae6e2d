"""The HParams session of a trained model, read back by TensorBoard's own
event reader and HParams plugin (what its dashboard shows)."""
import os

import pytest
import tensorflow as tf

from components.report import hparams_session


def read_hparams(logdir: str):
  """TensorBoard's HParams table for `logdir`: {session run (relative to
  logdir): {"group": session group name, "hparams": {...}, "metrics":
  {"group/tag": last value}}}, through TensorBoard's event multiplexer, its
  data provider and the HParams plugin's list-session-groups handler."""
  from tensorboard import context  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import data_provider  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import plugin_event_multiplexer  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins import base_plugin  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import api_pb2  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import backend_context  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import list_session_groups  # pylint: disable=g-import-not-at-top
  multiplexer = plugin_event_multiplexer.EventMultiplexer()
  multiplexer.AddRunsFromDirectory(logdir)
  multiplexer.Reload()
  tb_context = base_plugin.TBContext(
      logdir=logdir, multiplexer=multiplexer,
      data_provider=data_provider.MultiplexerDataProvider(multiplexer,
                                                          logdir))
  request = api_pb2.ListSessionGroupsRequest(  # as the dashboard asks
      start_index=0, slice_size=1000, allowed_statuses=[
          api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS,
          api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
  response = list_session_groups.Handler(
      context.RequestContext(), backend_context.Context(tb_context), "",
      request).run()
  sessions = {}
  for group in response.session_groups:
    for session in group.sessions:
      hparams = {}
      for name, value in group.hparams.items():
        kind = value.WhichOneof("kind")
        hparams[name] = getattr(value, kind)
      metrics = {"/".join(p for p in (m.name.group, m.name.tag) if p): m.value
                 for m in session.metric_values}
      sessions[session.name] = {"group": group.name, "hparams": hparams,
                                "metrics": metrics}
  return sessions


HPARAMS = {"model": "dense_100_relu", "optimizer": "rmsprop",
           "learning_rate": 0.001, "epochs": 5, "batch_size": 32,
           "dataset": "fashion_mnist", "lineage": "mnist-tfx-fashion-mnist"}


def _curves(run_dir, values):
  """Validation accuracy per epoch, as Keras' TensorBoard callback writes it."""
  writer = tf.summary.create_file_writer(os.path.join(run_dir, "validation"))
  with writer.as_default():
    for epoch, value in enumerate(values):
      tf.summary.scalar("epoch_accuracy", value, step=epoch)
  writer.close()


def test_session_has_settings_results_and_curves_as_one_run(tmp_path):
  run_dir = str(tmp_path / "Trainer" / "model_run" / "6")
  _curves(run_dir, [0.81, 0.86])
  hparams_session.write_session(
      run_dir, HPARAMS, {"eval_accuracy": 0.87, "test_accuracy": 0.86,
                         "pushed": 1.0})
  sessions = read_hparams(str(tmp_path))
  assert list(sessions) == ["Trainer/model_run/6"]
  session = sessions["Trainer/model_run/6"]
  assert session["group"] == "mnist-tfx-fashion-mnist dense_100_relu #6"
  assert session["hparams"] == HPARAMS
  assert session["metrics"] == {
      "eval_accuracy": pytest.approx(0.87), "test_accuracy":
      pytest.approx(0.86), "pushed": 1.0,
      "validation/epoch_accuracy": pytest.approx(0.86)}


def test_rewriting_keeps_one_session_and_a_push(tmp_path):
  """A cached rerun's Report rewrites the session of the same model: still
  one session, the latest results, and a model once pushed stays pushed."""
  run_dir = str(tmp_path / "model_run" / "6")
  other = str(tmp_path / "model_run" / "9")
  hparams_session.write_session(run_dir, HPARAMS, {
      "eval_accuracy": 0.87, "test_accuracy": 0.86, "pushed": 1.0}, now=100)
  hparams_session.write_session(run_dir, HPARAMS, {
      "eval_accuracy": 0.87, "test_accuracy": 0.86, "pushed": 0.0}, now=200)
  hparams_session.write_session(other, dict(HPARAMS), {
      "eval_accuracy": 0.80, "pushed": 0.0}, now=300)
  assert len(hparams_session.session_files(run_dir)) == 1
  sessions = read_hparams(str(tmp_path))
  assert sorted(sessions) == ["model_run/6", "model_run/9"]
  # The same settings, two trained models: two rows, not one merged group.
  assert sessions["model_run/6"]["group"] != sessions["model_run/9"]["group"]
  assert sessions["model_run/6"]["metrics"]["pushed"] == 1.0
  assert sessions["model_run/9"]["metrics"] == {
      "eval_accuracy": pytest.approx(0.80), "pushed": 0.0}


def test_values_come_from_the_summary():
  summary = {"pipeline": "mnist-tfx-mnist-quick", "dataset": "mnist",
             "model": {"model": "dense_512", "optimizer": "adam",
                       "learning_rate": 0.002, "epochs": 3, "batch_size": 64,
                       "hyperparameters": None},
             "evaluation": {"candidate": {"sparse_categorical_accuracy": 0.9}},
             "test_accuracy": {"candidate": 0.91}, "pushed": False}
  hparams, metrics = hparams_session.session_values(summary)
  assert hparams == {"model": "dense_512", "optimizer": "adam",
                     "learning_rate": 0.002, "epochs": 3, "batch_size": 64,
                     "dataset": "mnist", "lineage": "mnist-tfx-mnist-quick"}
  assert metrics == {"eval_accuracy": 0.9, "test_accuracy": 0.91,
                     "pushed": 0.0}
