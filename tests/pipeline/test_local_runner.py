"""The whole DAG, end to end, on a small slice of real MNIST."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components.evaluator.settings import GateSettings
from components.ingestion.settings import IngestionSettings
from components.report import run_record
from components.trainer import export
from components.trainer import hparams
from pipeline import config as config_lib
from pipeline import exits
from pipeline import local_runner
from pipeline import unchanged
from serving import versions
from tests.conftest import open_report_in_browser

NODES = ("MnistExampleGen", "ImportSchemaGen", "StatisticsGen",
         "ExampleValidator", "ValidationGate", "Trainer",
         "LatestPushedModel", "Evaluator", "Pusher", "TestSplitScorer")


@pytest.fixture(scope="module")
def small_config(mnist_dir, tmp_path_factory):
  return config_lib.PipelineConfig(
      dataset="mnist",
      ingestion=IngestionSettings(data_dir=mnist_dir, max_examples=3000),
      output_dir=str(tmp_path_factory.mktemp("e2e")),
      trainer=hparams.TrainerConfig(model="dense_512", epochs=1),
      # ~90 eval images per class: a class moves by 0.1 between equal models.
      gate=GateSettings(min_accuracy=0.5, max_class_accuracy_drop=0.2))


@pytest.fixture(scope="module")
def first_run(small_config):
  return local_runner.run(small_config)


@pytest.mark.e2e
def test_every_component_runs_and_the_model_is_pushed(small_config, first_run,
                                                      browser, tmp_path):
  summary = first_run
  assert {n: c["state"] for n, c in summary["components"].items()} == {
      n: "COMPLETE" for n in NODES}
  counts = summary["split_counts"]
  assert counts["train"] + counts["eval"] == 3000 and counts["test"] == 500
  assert 0.67 < counts["train"] / 3000 < 0.73  # 7:3 by image hash
  assert summary["baseline_model"] is None
  assert summary["blessed"] and summary["pushed"]
  # The devices training used, in the summary and the report.
  used = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
  assert summary["training_devices"]["used"] == used
  assert f"Trained on: {used} (" in open(summary["report"]).read()
  assert summary["evaluation"]["candidate"]["sparse_categorical_accuracy"] > 0.5
  assert 0.5 < summary["test_accuracy"]["candidate"] <= 1.0
  pushed = summary["pushed_to"]
  assert os.path.dirname(pushed) == small_config.serving_model_dir
  assert os.path.basename(pushed).isdigit()
  on_disk = json.load(open(os.path.join(small_config.output_dir,
                                        "summary.json")))
  assert on_disk["pushed_to"] == pushed
  assert all(c["seconds"] is not None for c in on_disk["components"].values())
  # Side by side, yet never before its inputs: each component registers
  # after its upstream components published (times rounded to 0.01 s).
  parts = on_disk["components"]
  end = {n: c["started"] + c["seconds"] for n, c in parts.items()}
  assert parts["Trainer"]["started"] >= end["MnistExampleGen"] - 0.02
  assert parts["StatisticsGen"]["started"] >= end["MnistExampleGen"] - 0.02
  assert parts["Pusher"]["started"] >= max(end["Evaluator"],
                                           end["ValidationGate"]) - 0.02
  # The HTML report of a real run, in Chromium: three pictures, all decoded.
  seen = open_report_in_browser(
      browser, os.path.join(small_config.output_dir, "report.html"),
      str(tmp_path / "screenshot.png"))
  assert seen["verdict"] == "Verdict: " + summary["verdict"]
  assert len(seen["images"]) == 3  # curves, confusion matrix, samples
  assert all(w >= 500 and h >= 300 for w, h in seen["images"])
  assert seen["fetched"] == []


@pytest.mark.e2e
def test_pushed_model_answers_alike_on_every_signature(first_run,
                                                      mnist_dir):
  """Real test images as a client sends them: 0-255 pixels, pixels / 255,
  serialized tf.Examples; the same probabilities, and right as often as the
  run's own test-split figure says."""
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  images_path = os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")
  labels_path = os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz")
  pixels = idx.parse_images(idx.read_bytes(images_path), images_path)[:300]
  labels = idx.parse_labels(idx.read_bytes(labels_path), labels_path)[:300]
  loaded = tf.saved_model.load(first_run["pushed_to"])
  by_pixels = loaded.signatures[export.PIXELS_SIGNATURE](
      pixels=tf.constant(pixels))[export.OUTPUT_KEY].numpy()
  scaled = (pixels.reshape(-1, 784) / 255.0).astype(np.float32)
  by_images = loaded.signatures[export.IMAGES_SIGNATURE](
      images=tf.constant(scaled))[export.OUTPUT_KEY].numpy()
  examples = [tf.train.Example(features=tf.train.Features(feature={
      "image": tf.train.Feature(float_list=tf.train.FloatList(value=row))}))
              .SerializeToString() for row in scaled]
  by_examples = loaded.signatures["serving_default"](
      examples=tf.constant(examples))[export.OUTPUT_KEY].numpy()
  np.testing.assert_allclose(by_pixels, by_images, atol=1e-5)
  np.testing.assert_allclose(by_examples, by_images, atol=1e-5)
  accuracy = np.mean(by_images.argmax(axis=1) == labels)
  assert accuracy > 0.8
  assert abs(accuracy - first_run["test_accuracy"]["candidate"]) < 0.06


@pytest.fixture(scope="module")
def second_run(small_config, first_run):
  del first_run
  return local_runner.run(small_config)


@pytest.mark.e2e
def test_rerun_after_its_own_push_is_unchanged(small_config, first_run,
                                               second_run):
  # Its candidate is now the model in service: run again, the DAG would
  # compare it with itself and find it already there, so TFX is not started
  # (a model in service pushed by another run is compared again: see
  # test_a_new_model_in_service_is_compared_again_and_nothing_else).
  assert second_run["unchanged"]
  assert second_run["run_id"] == first_run["run_id"]
  assert _runs(small_config) == 1  # no new run in ML Metadata
  assert versions.existing_versions(small_config.serving_model_dir) == [
      int(os.path.basename(first_run["pushed_to"]))]


@pytest.fixture(scope="module")
def third_run(small_config, second_run):
  """A plain rerun after the push, and the ML Metadata runs before and
  after it."""
  del second_run
  runs_before = _runs(small_config)
  third = local_runner.run(small_config)
  return third, runs_before, _runs(small_config)


@pytest.fixture(scope="module")
def rerun_from_report(small_config, third_run):
  """`RERUN_FROM=Report` after the push: the comparison with the model now
  in service is redone (and cached from then on)."""
  del third_run
  return local_runner.run(dataclasses.replace(small_config,
                                              rerun_from="Report"))


@pytest.mark.e2e
def test_unchanged_rerun_does_not_start_tfx(small_config, second_run,
                                            third_run, rerun_from_report):
  third, runs_before, runs_after = third_run
  assert third["unchanged"]  # the last run's report stands
  assert third["run_id"] == second_run["run_id"]
  assert third["verdict"] == second_run["verdict"]
  assert runs_after == runs_before  # no new run in ML Metadata
  # RERUN_FROM=Report runs the DAG. Data, statistics and training come from
  # the cache; the comparison with the model in service is redone, because
  # the cached one compared with none: the first run's model is now the
  # baseline, re-blessed against itself, already in service, no new version.
  fourth = rerun_from_report
  assert "unchanged" not in fourth and fourth["run_id"] != third["run_id"]
  assert set(fourth["recomputed_components"]) == {
      "LatestPushedModel", "Evaluator", "TestSplitScorer", "Pusher"}
  assert fourth["baseline_model"] == second_run["candidate_model"]
  assert fourth["blessed"] and not fourth["new_version"]
  assert fourth["pushed_to"] == second_run["pushed_to"]
  assert len(versions.existing_versions(small_config.serving_model_dir)) == 1
  # Once more: now everything comes from the cache but the Pusher, which
  # checks the serving directory every run (and finds its model there).
  fifth = local_runner.run(dataclasses.replace(small_config,
                                               rerun_from="Report"))
  assert fifth["recomputed_components"] == ["Pusher"]
  assert set(fifth["cached_components"]) == set(NODES) - {"Pusher"}
  assert fifth["verdict"] == fourth["verdict"]
  on_disk = json.load(open(os.path.join(small_config.output_dir,
                                        "summary.json")))
  assert on_disk["recomputed_components"] == ["Pusher"]
  assert on_disk["settings"]["seed"] == 42
  assert on_disk["settings"]["trainer"]["model"] == "dense_512"


def _runs(config):
  store = run_record.sqlite_store(config.metadata_path)
  return len(store.get_contexts_by_type("pipeline_run"))


def test_unchanged_run_key_sees_settings_code_data_and_service(
    fake_data_dir, tmp_path, monkeypatch):
  config = config_lib.PipelineConfig(
      dataset="mnist", ingestion=IngestionSettings(data_dir=fake_data_dir),
      output_dir=str(tmp_path / "out"))
  key = unchanged.unchanged_run_key(config)
  assert key == unchanged.unchanged_run_key(config)
  assert unchanged.unchanged_run_key(dataclasses.replace(
      config, seed=7)) != key
  data_file = os.path.join(fake_data_dir, "t10k-labels-idx1-ubyte.gz")
  os.utime(data_file, ns=(0, 0))  # touched: the same data
  assert unchanged.unchanged_run_key(config) == key
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  labels = idx.parse_labels(idx.read_bytes(data_file), data_file)
  idx.write_idx(data_file, labels[::-1].copy())  # replaced in place
  replaced = unchanged.unchanged_run_key(config)
  assert replaced != key
  serving = os.path.join(config.serving_model_dir, "1700000000")
  os.makedirs(serving)
  open(os.path.join(serving, "saved_model.pb"), "w").close()  # a push
  pushed = unchanged.unchanged_run_key(config)
  assert pushed != replaced
  from components import fingerprint  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(fingerprint, "project_fingerprint", lambda: "edited")
  assert unchanged.unchanged_run_key(config) != pushed
  for never in (dict(enable_cache=False), dict(rerun_from="Trainer"),
                dict(ingestion=IngestionSettings(data_dir="s3://bucket/mnist")),
                dict(ingestion=IngestionSettings(
                    data_dir=str(tmp_path / "missing")))):
    assert unchanged.unchanged_run_key(dataclasses.replace(
        config, **never)) is None


def test_only_a_candidate_in_service_counts_as_seen_in_service(
    fake_data_dir, tmp_path):
  config = config_lib.PipelineConfig(
      dataset="mnist", ingestion=IngestionSettings(data_dir=fake_data_dir),
      output_dir=str(tmp_path / "out"))
  state = unchanged.run_state(config, unchanged.observe(config))
  assert json.loads(state["in_service"])["version_dir"] is None
  def push(version):
    path = os.path.join(config.serving_model_dir, version)
    os.makedirs(path)
    open(os.path.join(path, "saved_model.pb"), "w").close()
    return path
  mine = push("1700000000")
  pushed = {"pushed_to": mine}
  assert json.loads(unchanged.state_after(config, state, pushed)[
      "in_service"])["version_dir"] == mine
  # Refused: the run saw what is in service before it.
  assert unchanged.state_after(config, state, {"pushed_to": None}) == state
  # Another run pushed after this one: a rerun must compare with that.
  push("1700000100")
  assert unchanged.state_after(config, state, pushed) == state
  assert unchanged.state_after(config, None, pushed) is None


def test_the_short_cut_never_reports_a_push_that_is_gone(tmp_path):
  """The last run's key matches, but the version its report says it pushed
  is no longer whole (removed by hand): the DAG runs (its Pusher puts a
  model back), the report is not repeated."""
  config = config_lib.PipelineConfig(output_dir=str(tmp_path))
  version = os.path.join(config.serving_model_dir, "1700000000")
  os.makedirs(version)
  with open(os.path.join(version, "saved_model.pb"), "w") as f:
    f.write("model")
  (tmp_path / unchanged.LAST_RUN_FILE).write_text(
      json.dumps({"key": "k", "run_id": "r1"}))
  (tmp_path / unchanged.SUMMARY_FILE).write_text(
      json.dumps({"run_id": "r1", "pushed_to": version}))
  (tmp_path / "report.md").write_text("report")
  assert unchanged.finished_run(config, "k")["unchanged"]
  os.remove(os.path.join(version, "saved_model.pb"))
  assert unchanged.finished_run(config, "k") is None


@pytest.mark.e2e
def test_rerun_from_a_named_component(small_config, rerun_from_report):
  del rerun_from_report  # the comparison with the model in service is cached
  rerun = local_runner.run(dataclasses.replace(small_config,
                                               rerun_from="Evaluator"))
  assert set(rerun["recomputed_components"]) == {"Evaluator",
                                                 "TestSplitScorer", "Pusher"}
  assert rerun["blessed"] and not rerun["new_version"]


@pytest.mark.e2e
def test_bad_data_fails_in_one_line_and_pushes_nothing(tmp_path):
  from tests.conftest import write_fake_dataset  # pylint: disable=g-import-not-at-top
  data_dir = write_fake_dataset(tmp_path / "data")
  broken = os.path.join(data_dir, "train-labels-idx1-ubyte.gz")
  with open(broken, "wb") as f:
    f.write(b"not gzip at all")
  out = tmp_path / "out"
  env = dict(os.environ, DATASET="mnist", DATA_DIR=data_dir,
             OUTPUT_DIR=str(out), EPOCHS="1", MIN_ACCURACY="0")
  env.pop("VERBOSE", None)
  result = subprocess.run([sys.executable, "-m", "pipeline.local_runner"],
                          env=env, capture_output=True, text=True,
                          timeout=300, check=False)
  assert result.returncode == 1
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert errors == [f"error: DataError: {broken}: not a gzip file (the name "
                    "ends in .gz)"], result.stderr[-2000:]
  assert not os.path.exists(out / "serving")
  config = config_lib.PipelineConfig.from_env(env)
  record = run_record.RunRecord(run_record.sqlite_store(config.metadata_path),
                                 config.pipeline_name)
  assert record.state("MnistExampleGen") == "FAILED"
  assert record.state("Trainer") is None


@pytest.fixture(scope="module")
def worse_run(small_config, rerun_from_report):
  """One epoch of the sigmoid net with plain SGD: far below the baseline
  (the comparison with it is cached: only the Trainer's change shows)."""
  del rerun_from_report
  return local_runner.run(dataclasses.replace(
      small_config, trainer=hparams.TrainerConfig(
          model="dense_100_sigmoid", epochs=1, batch_size=128)))


@pytest.fixture(scope="module")
def better_run(small_config, worse_run):
  del worse_run
  return local_runner.run(dataclasses.replace(
      small_config, trainer=hparams.TrainerConfig(model="dense_512",
                                                  epochs=4)))


@pytest.mark.e2e
def test_worse_candidate_is_not_blessed_and_service_is_untouched(
    small_config, first_run, worse_run):
  # A changed trainer setting recomputes the Trainer and what follows it.
  assert set(worse_run["recomputed_components"]) == {
      "Trainer", "Evaluator", "TestSplitScorer", "Pusher"}
  pushed = versions.existing_versions(small_config.serving_model_dir)
  assert worse_run["baseline_model"] == first_run["candidate_model"]
  assert not worse_run["blessed"] and not worse_run["pushed"]
  candidate = worse_run["evaluation"]["candidate"]["sparse_categorical_accuracy"]
  baseline = worse_run["evaluation"]["baseline"]["sparse_categorical_accuracy"]
  assert candidate < baseline - small_config.gate.max_accuracy_drop
  assert worse_run["verdict"].startswith("not pushed: ")
  assert (f"accuracy {candidate:.4f} < baseline {baseline:.4f} "
          f"\u2212 {small_config.gate.max_accuracy_drop}") in worse_run["verdict"]
  assert pushed == [int(os.path.basename(first_run["pushed_to"]))]
  report = open(worse_run["report"]).read()
  assert worse_run["verdict"] in report


@pytest.mark.e2e
def test_better_candidate_is_blessed_and_pushed_as_a_new_version(
    small_config, first_run, better_run):
  assert better_run["blessed"] and better_run["pushed"]
  assert better_run["new_version"]
  assert better_run["baseline_model"] == first_run["candidate_model"]
  pushed = versions.existing_versions(small_config.serving_model_dir)
  assert len(pushed) == 2
  assert better_run["pushed_to"] == os.path.join(
      small_config.serving_model_dir, str(pushed[-1]))
  assert os.path.isdir(first_run["pushed_to"])  # the old version stays
  report_dir = os.path.join(small_config.output_dir, "report")
  for picture in ("training_curves.png", "confusion_matrix.png",
                  "sample_predictions.png"):
    assert os.path.getsize(os.path.join(report_dir, picture)) > 1000


@pytest.mark.e2e
def test_a_new_model_in_service_is_compared_again_and_nothing_else(
    small_config, worse_run, better_run):
  # The worse settings again, now that another run has pushed a new model:
  # only the comparison with the model in service is redone.
  del worse_run
  again = local_runner.run(dataclasses.replace(
      small_config, trainer=hparams.TrainerConfig(
          model="dense_100_sigmoid", epochs=1, batch_size=128)))
  assert set(again["recomputed_components"]) == {
      "LatestPushedModel", "Evaluator", "TestSplitScorer", "Pusher"}
  assert again["baseline_version"] == better_run["pushed_to"]
  assert not again["blessed"] and not again["pushed"]
  assert len(versions.existing_versions(small_config.serving_model_dir)) == 2


@pytest.mark.e2e
@pytest.mark.parametrize("runner", ["local", "beam"])  # TFX's, one at a time
def test_tfx_runners_run_the_same_pipeline(mnist_dir, tmp_path, runner):
  config = config_lib.PipelineConfig(
      dataset="mnist",
      ingestion=IngestionSettings(data_dir=mnist_dir, max_examples=1200),
      output_dir=str(tmp_path), runner=runner,
      gate=GateSettings(min_accuracy=0.3),
      trainer=hparams.TrainerConfig(model="dense_100_relu_dropout", epochs=1))
  summary = local_runner.run(config)
  assert {c["state"] for c in summary["components"].values()} == {"COMPLETE"}
  assert summary["pushed"]
  assert set(summary["components"]) == set(NODES)
  # One at a time: each component registered after the one before it
  # published (times rounded to 0.01 s).
  spans = sorted((c["started"], c["started"] + c["seconds"])
                 for c in summary["components"].values())
  assert all(later[0] >= earlier[1] - 0.02
             for earlier, later in zip(spans, spans[1:])), spans


@pytest.mark.e2e
def test_an_anomaly_stops_the_run_before_the_push(mnist_dir, tmp_path):
  """Data that breaks the schema (here: a schema allowing labels 0-4 only)
  fails ValidationGate with the anomalies listed, on the default runner
  that runs the data checks beside the Trainer; the push never runs."""
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from pipeline import concurrent_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(
      dataset="mnist", output_dir=str(tmp_path),
      ingestion=IngestionSettings(data_dir=mnist_dir, max_examples=600))
  strict = tmp_path / "schema.pbtxt"
  strict.write_text(open(config.schema_path).read().replace(
      "int_domain { min: 0 max: 9 }", "int_domain { min: 0 max: 4 }"))
  dag = pipeline_lib.create_pipeline(
      config, schema_path=str(strict),
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          config.metadata_path))
  assert config.runner == "concurrent"
  with pytest.raises(Exception) as error:
    concurrent_dag_runner.ConcurrentDagRunner().run(dag)
  cause = exits.root_cause(error.value)
  message = exits.one_line(cause)
  assert message.startswith("DataAnomaliesError: 3 data anomalies, nothing "
                            "pushed: eval/label:"), message
  assert "test/label" in message and "train/label" in message
  record = run_record.RunRecord(run_record.sqlite_store(config.metadata_path),
                                 config.pipeline_name)
  assert record.state("ValidationGate") == "FAILED"
  assert record.state("Pusher") is None and record.state("Report") is None
  assert not os.path.exists(config.serving_model_dir)
