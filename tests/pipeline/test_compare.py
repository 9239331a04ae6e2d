"""`make compare` for real: two presets trained by the pipeline on a small
slice of Fashion-MNIST, then `mnist-tfx runs`, TensorBoard's HParams
plugin and the comparison page in Chromium, and a rerun from the cache."""
import json
import os

import pytest

import mnist_tfx
from components.evaluator.settings import GateSettings
from components.ingestion.settings import IngestionSettings
from components.trainer import hparams
from pipeline import compare
from pipeline import compare_page
from pipeline import config as config_lib
from pipeline import local_runner
from pipeline import runs
from tests.components.report.test_hparams_session import read_hparams
from tests.conftest import open_report_in_browser

MODELS = ("dense_100_relu", "dense_100_relu_adam")
ENV = {"DATASET": "fashion_mnist", "MAX_EXAMPLES": "1200", "EPOCHS": "2",
       # ~36 eval images per class: a class moves a lot between models.
       "MIN_ACCURACY": "0.5", "MIN_CLASS_ACCURACY": "0",
       "MAX_CLASS_ACCURACY_DROP": "1.0"}


@pytest.fixture(scope="module")
def compared(fashion_dir, tmp_path_factory):
  """`mnist-tfx compare dense_100_relu dense_100_relu_adam` with the
  settings in the environment, as `make compare` runs it; returns
  (OUTPUT_DIR, compare.json)."""
  output_dir = str(tmp_path_factory.mktemp("compare"))
  with pytest.MonkeyPatch.context() as patch:
    for name, value in dict(ENV, DATA_DIR=fashion_dir,
                            OUTPUT_DIR=output_dir).items():
      patch.setenv(name, value)
    assert mnist_tfx.main(["compare", *MODELS]) == 0
  with open(os.path.join(output_dir, compare.COMPARE_DIR,
                         compare_page.JSON_FILE)) as f:
    return output_dir, json.load(f)


@pytest.fixture(scope="module")
def cached_rerun(compared, fashion_dir):
  """The second model's run again, the DAG started (RERUN_FROM=Report):
  its Trainer comes from the cache."""
  output_dir, _ = compared
  config = config_lib.PipelineConfig(
      dataset="fashion_mnist",
      ingestion=IngestionSettings(data_dir=fashion_dir, max_examples=1200),
      output_dir=output_dir, gate=GateSettings(
          min_accuracy=0.5, min_class_accuracy=0.0,
          max_class_accuracy_drop=1.0),
      trainer=hparams.TrainerConfig(model=MODELS[1], epochs=2),
      rerun_from="Report")
  return local_runner.run(config)


def _summaries(output_dir):
  """summary.json of every run in ML Metadata, by run id."""
  return {r.run_id: r.summary for r in runs.read_runs(output_dir)}


@pytest.mark.e2e
def test_compare_trains_each_model_on_the_same_split(compared):
  output_dir, result = compared
  entries = result["models"]
  assert [e["model"] for e in entries] == list(MODELS)
  assert [e["optimizer"] for e in entries] == ["rmsprop", "adam"]
  summaries = _summaries(output_dir)
  assert len({e["run_id"] for e in entries}) == 2
  for e in entries:
    summary = summaries[e["run_id"]]
    assert summary["model"]["model"] == e["model"]
    assert e["test_accuracy"] == summary["test_accuracy"]["candidate"] > 0.3
    assert e["eval_accuracy"] == summary["evaluation"]["candidate"][
        "sparse_categorical_accuracy"] > 0.3
    assert summary["split_counts"] == result["split_counts"]
    assert e["trained_now"] and e["training_seconds"] > 0
    assert e["epochs_run"] == 2 and len(e["history"]["val_accuracy"]) == 2
  # The first model had no baseline; the second was compared with it.
  first, second = (summaries[e["run_id"]] for e in entries)
  assert first["baseline_model"] is None and first["pushed"]
  assert second["baseline_model"] == first["candidate_model"]
  with open(os.path.join(output_dir, "compare", "compare.md")) as f:
    page = f.read()
  for e in entries:
    assert f"| `{e['model']}` |" in page
    assert f"{e['test_accuracy']:.4f}" in page


@pytest.mark.e2e
def test_comparison_page_opens_in_chromium_with_its_pictures(compared,
                                                            browser,
                                                            tmp_path):
  output_dir, _ = compared
  seen = open_report_in_browser(
      browser, os.path.join(output_dir, "compare", "compare.html"),
      str(tmp_path / "screenshot.png"))
  assert seen["title"] == "Model comparison: fashion_mnist"
  assert len(seen["images"]) == 2  # accuracy bars, validation curves
  for width, height in seen["images"]:  # decoded, at the plots' size
    assert width >= 500 and height >= 350
  assert seen["table_rows"] == 1 + len(MODELS)
  assert seen["fetched"] == []  # self-contained


@pytest.mark.e2e
def test_runs_lists_both_runs_with_their_settings_and_accuracies(
    compared, cached_rerun, capsys):
  output_dir, result = compared
  assert mnist_tfx.main(["runs", "--output-dir", output_dir, "--json"]) == 0
  table = json.loads(capsys.readouterr().out)
  assert [r["model"] for r in table] == list(MODELS)  # oldest first
  for row, e in zip(table, result["models"]):
    assert row["run_id"] == e["run_id"]
    assert row["dataset"] == "fashion_mnist"
    assert row["lineage"] == "mnist-tfx-fashion-mnist-quick1200-seed42-loose"
    assert (row["optimizer"], row["learning_rate"], row["epochs"],
            row["batch_size"]) == (e["optimizer"], 0.001, 2, 32)
    assert row["eval_accuracy"] == e["eval_accuracy"]
    assert row["test_accuracy"] == e["test_accuracy"]
    assert row["verdict"] == e["verdict"] and row["trained"]
    assert row["seconds"] > 0
  assert table[0]["verdict"] == f"pushed {table[0]['pushed_version']}"
  assert mnist_tfx.main(["runs", "--output-dir", output_dir, "--sort",
                         "accuracy"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 1 + len(MODELS)
  best = max(result["models"], key=lambda e: e["test_accuracy"])
  assert best["run_id"] in lines[1]


@pytest.mark.e2e
def test_a_cached_rerun_adds_no_row(compared, cached_rerun):
  output_dir, result = compared
  assert cached_rerun["components"]["Trainer"]["state"] == "CACHED"
  assert cached_rerun["run_id"] not in {e["run_id"] for e in
                                        result["models"]}
  assert len(runs.read_runs(output_dir)) == 3  # three runs in ML Metadata
  table = runs.rows(runs.read_runs(output_dir))
  assert [r["run_id"] for r in table] == [e["run_id"] for e in
                                          result["models"]]
  assert table[1]["reruns"] == [cached_rerun["run_id"]]


@pytest.mark.e2e
def test_tensorboard_shows_each_trained_model_once(compared, cached_rerun):
  """TensorBoard's own reader on OUTPUT_DIR, as `make tensorboard` serves
  it: one HParams session per model (the rerun rewrote its model's), with
  the settings, the results and the validation curve of that model."""
  output_dir, result = compared
  sessions = read_hparams(output_dir)
  assert len(sessions) == len(MODELS)
  by_run_dir = {os.path.join(output_dir, name): s
                for name, s in sessions.items()}
  for e in result["models"]:
    session = by_run_dir[e["run_dir"]]
    assert session["hparams"] == {
        "model": e["model"], "optimizer": e["optimizer"],
        "learning_rate": 0.001, "epochs": 2, "batch_size": 32,
        "dataset": "fashion_mnist",
        "lineage": "mnist-tfx-fashion-mnist-quick1200-seed42-loose"}
    metrics = session["metrics"]
    assert metrics["eval_accuracy"] == pytest.approx(e["eval_accuracy"])
    assert metrics["test_accuracy"] == pytest.approx(e["test_accuracy"])
    assert metrics["pushed"] == float(e["pushed"])
    # The curves Keras wrote, under the same run: the last epoch's.
    assert metrics["validation/epoch_accuracy"] == pytest.approx(
        e["history"]["val_accuracy"][-1])


def test_entry_reads_training_time_from_the_history(tmp_path):
  run_dir = tmp_path / "model_run"
  run_dir.mkdir()
  (run_dir / "history.json").write_text(json.dumps(
      {"epoch": [0, 1], "val_accuracy": [0.8, 0.7], "val_loss": [0.5, 0.6],
       "best_epoch": 0, "epoch_seconds": [2.5, 1.5]}))
  summary = {"model": {"model": "dense_512", "optimizer": "rmsprop",
                       "learning_rate": 0.001, "epochs": 2,
                       "batch_size": 128},
             "components": {"Trainer": {"state": "CACHED"}},
             "run_dir": str(run_dir), "pushed": False,
             "refusal": "not pushed: accuracy 0.7 < minimum 0.9"}
  e = compare.entry("dense_512", summary, 3.0)
  assert (e["training_seconds"], e["trained_now"], e["best_epoch"],
          e["epochs_run"]) == (4.0, False, 0, 2)
  assert e["verdict"] == "not pushed: accuracy 0.7 < minimum 0.9"
