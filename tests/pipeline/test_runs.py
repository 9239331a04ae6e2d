"""`mnist-tfx runs`: what a row is, sorting, and bad input. (Real runs:
tests/pipeline/test_compare.py.)"""
import json
import os
import subprocess
import sys

import mnist_tfx
from pipeline import runs
from tests.conftest import REPO_ROOT


def _run(run_id, started, model_id, evaluation_id, trained, test=0.8,
         baseline=None, pushed=False, new_version=False, refusal=None):
  summary = {
      "dataset": "mnist", "candidate_model": f"/m/{model_id}",
      "baseline_model": baseline, "pushed": pushed,
      "new_version": new_version,
      "pushed_to": "/serving/mnist/17" if pushed else None,
      "refusal": refusal,
      "model": {"model": "dense_512", "optimizer": "rmsprop",
                "learning_rate": 0.001, "epochs": 5, "batch_size": 128},
      "evaluation": {"candidate": {"sparse_categorical_accuracy": test + 0.01}},
      "test_accuracy": {"candidate": test}}
  return runs.Run(pipeline="mnist-tfx-mnist", run_id=run_id, started=started,
                  seconds=10.0, trained=trained, model_id=model_id,
                  evaluation_id=evaluation_id, summary=summary)


def test_a_row_is_a_run_that_trained_or_compared_something_new():
  history = [
      _run("r1", 1, model_id=6, evaluation_id=8, trained=True, pushed=True,
           new_version=True),
      # RERUN_FROM=Report with nothing else changed: the same evaluation.
      _run("r2", 2, model_id=6, evaluation_id=8, trained=False, pushed=True,
           new_version=True),
      # Another model, refused against model 6.
      _run("r3", 3, model_id=16, evaluation_id=18, trained=True, test=0.7,
           baseline="/m/6", refusal="not pushed: accuracy 0.7 < baseline"),
      # Model 6 again after its own push: compared with itself.
      _run("r4", 4, model_id=6, evaluation_id=28, trained=False,
           baseline="/m/6", pushed=True),
      # Model 16 from the cache under new gate settings: a new comparison.
      _run("r5", 5, model_id=16, evaluation_id=38, trained=False, test=0.7,
           baseline="/m/6", pushed=True, new_version=True),
  ]
  table = runs.rows(history)
  assert [(r["run_id"], r["trained"], r["reruns"]) for r in table] == [
      ("r1", True, ["r2", "r4"]), ("r3", True, []), ("r5", False, [])]
  assert [r["verdict"] for r in table] == [
      "pushed 17", "not pushed: accuracy 0.7 < baseline", "pushed 17"]
  assert table[0]["test_accuracy"] == 0.8
  assert table[0]["eval_accuracy"] == 0.81


def test_sort_by_accuracy_puts_the_best_first_and_unscored_last():
  table = runs.rows([_run("a", 1, 1, 1, True, test=0.8),
                     _run("b", 2, 2, 2, True, test=0.9),
                     _run("c", 3, 3, 3, True, test=0.7)])
  table[2]["test_accuracy"] = None
  assert [r["run_id"] for r in runs.sort_rows(table, "accuracy")] == [
      "b", "a", "c"]
  assert [r["run_id"] for r in runs.sort_rows(table, "date")] == [
      "a", "b", "c"]
  text = runs.format_table(table).splitlines()
  assert text[0].split()[:3] == ["run", "date", "dataset"]
  assert len(text) == 4 and "0.9000" in text[2]


def test_bad_output_dirs_fail_in_one_line(tmp_path, capsys):
  assert mnist_tfx.main(["runs", "--output-dir", str(tmp_path / "no")]) == 1
  err = capsys.readouterr().err
  assert err == f"error: OUTPUT_DIR={tmp_path / 'no'} is not a directory\n"
  (tmp_path / "metadata").mkdir()
  bad = tmp_path / "metadata" / "mnist-tfx-mnist.sqlite"
  bad.write_text("not a database")
  assert mnist_tfx.main(["runs", "--output-dir", str(tmp_path)]) == 1
  err = capsys.readouterr().err
  assert err.startswith(f"error: {bad}: not a readable ML Metadata file")
  assert err.count("\n") == 1


def test_an_empty_output_dir_has_no_runs(tmp_path, capsys):
  assert mnist_tfx.main(["runs", "--output-dir", str(tmp_path)]) == 0
  assert capsys.readouterr().out == f"no runs in {tmp_path}\n"
  assert mnist_tfx.main(["runs", "--output-dir", str(tmp_path),
                         "--json"]) == 0
  assert json.loads(capsys.readouterr().out) == []


def test_compare_refuses_unknown_presets_before_training(tmp_path, capsys,
                                                         monkeypatch):
  out = tmp_path / "out"
  monkeypatch.setenv("OUTPUT_DIR", str(out))
  assert mnist_tfx.main(["compare", "dense_100_relu", "dense_100_rleu"]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: MODELS: unknown model 'dense_100_rleu'; "
                        "choose one of [")
  assert err.count("\n") == 1
  assert not out.exists()  # nothing ran
  monkeypatch.setenv("MODELS", "")
  assert mnist_tfx.main(["compare"]) == 1
  assert capsys.readouterr().err.startswith("error: MODELS is empty")



def test_settings_runs_and_models_start_without_tensorflow(tmp_path):
  """`make runs`, `make models` and the settings answer without loading
  TensorFlow (~2 s): the model zoo imports it when it builds a model."""
  script = (
      "import sys, mnist_tfx, pipeline.local_runner\n"
      "from pipeline import config\n"
      "config.PipelineConfig.from_env({'MODEL': 'cnn', 'OPTIMIZER': 'adam'})"
      ".settings_record()\n"
      "mnist_tfx.main(['models'])\n"
      "mnist_tfx.main(['runs'])\n"
      "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
      "('tensorflow', 'tf_keras', 'keras')))")
  done = subprocess.run(
      [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
      text=True, check=True, env=dict(os.environ, OUTPUT_DIR=str(tmp_path)))
  assert "cnn" in done.stdout  # the models' list
  assert done.stdout.splitlines()[-1] == "LOADED []"
