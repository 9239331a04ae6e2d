"""A cache that sees code: editing the code or the schema a component
depends on recomputes that component (and what follows), nothing else."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from components import fingerprint
from pipeline import config as config_lib

REPO = config_lib.REPO_ROOT


def test_fingerprints_change_with_the_code_and_the_file(tmp_path):
  assert fingerprint.code_fingerprint("components.trainer") == \
      fingerprint.code_fingerprint("components.trainer")
  assert fingerprint.code_fingerprint("components.trainer") != \
      fingerprint.code_fingerprint("components.ingestion")
  schema = tmp_path / "schema.pbtxt"
  schema.write_text("feature { name: 'label' }\n")
  before = fingerprint.file_fingerprint(str(schema))
  schema.write_text("feature { name: 'label' }\n# reviewed\n")
  assert fingerprint.file_fingerprint(str(schema)) != before


@pytest.mark.slow
def test_edited_model_code_or_schema_recomputes_what_depends_on_it(
    tmp_path, fake_data_dir):
  """Runs `pipeline.local_runner` from a copy of the project; after an edit
  of components/trainer/models.py the Trainer is retrained (the data
  components stay cached), after an edit of the schema file the schema is
  imported again."""
  project = tmp_path / "project"
  for name in ("components", "pipeline", "schemas"):
    shutil.copytree(os.path.join(REPO, name), project / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
  env = dict(os.environ, PYTHONPATH=str(project), DATASET="mnist",
             DATA_DIR=fake_data_dir, OUTPUT_DIR=str(tmp_path / "out"),
             MODEL="dense_100_relu", EPOCHS="1", MIN_ACCURACY="0",
             KERAS_PROGRESS="epoch")
  env.pop("VERBOSE", None)

  def run():
    done = subprocess.run([sys.executable, "-m", "pipeline.local_runner"],
                          env=env, cwd=str(project), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "out" / "summary.json") as f:
      return json.load(f)

  run()
  with open(project / "components" / "trainer" / "models.py", "a") as f:
    f.write("\n# an edit\n")
  after_code = run()
  assert "Trainer" in after_code["recomputed_components"]
  assert {"MnistExampleGen", "StatisticsGen", "ImportSchemaGen",
          "ExampleValidator"} <= set(after_code["cached_components"])
  with open(project / "schemas" / "mnist" / "schema.pbtxt", "a") as f:
    f.write("\n# reviewed again\n")
  after_schema = run()
  assert {"ImportSchemaGen", "ExampleValidator", "Trainer"} <= set(
      after_schema["recomputed_components"])
  assert {"MnistExampleGen", "StatisticsGen"} <= set(
      after_schema["cached_components"])
