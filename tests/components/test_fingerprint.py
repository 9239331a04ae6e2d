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
@pytest.mark.e2e
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


KEYS_SCRIPT = r"""
import json, sys
import components
from components.ingestion.settings import IngestionSettings
from components.tuner.settings import TunerSettings
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib

def keys():
  config = config_lib.PipelineConfig(
      dataset="mnist", output_dir="/out",
      ingestion=IngestionSettings(data_dir="/data"),
      tuner=TunerSettings(enabled=True))
  dag = pipeline_lib.create_pipeline(
      config, in_service="{}", data_digest="d")
  return {c.id: json.dumps(c.exec_properties, sort_keys=True, default=str)
          for c in dag.components}

edits = sys.argv[1:]
before = keys()
changed = {}
for path in edits:
  with open(path, "a") as f:
    f.write("\n# an edit\n")
  after = keys()
  changed[path] = sorted(n for n in after if after[n] != before[n])
  before = after
print("RESULT " + json.dumps(changed))
"""

# Each edit, and the components whose cache keys must change with it: every
# component that runs the edited code, and no other.
EDITS = {
    "components/trainer/export.py": ["Report", "TestSplitScorer", "Trainer"],
    "components/tuner/search_space.py": ["Tuner"],
    "components/baseline/executor.py": ["Evaluator", "LatestPushedModel",
                                        "Report", "TestSplitScorer"],
    "components/ingestion/sources.py": ["MnistExampleGen"],
    "components/validation/anomalies.py": ["ValidationGate"],
    "components/evaluator/blessing.py": ["Evaluator", "Pusher", "Report"],
}


@pytest.mark.slow
def test_cache_keys_follow_the_code_each_component_runs(tmp_path):
  """Editing a module changes the cache key of exactly the components that
  run it, found by following imports (before: hand-kept lists, which missed
  the export code the test-split scoring loads, the baseline code the
  Evaluator reads, and the Tuner's search space)."""
  project = tmp_path / "project"
  for name in ("components", "pipeline", "serving", "schemas"):
    shutil.copytree(os.path.join(REPO, name), project / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
  done = subprocess.run(
      [sys.executable, "-c", KEYS_SCRIPT, *EDITS], cwd=str(project),
      env=dict(os.environ, PYTHONPATH=str(project), TF_CPP_MIN_LOG_LEVEL="3"),
      capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  (line,) = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
  assert json.loads(line[len("RESULT "):]) == EDITS


ENTRY_MODULES = (
    "components.ingestion.executor", "components.ingestion.data_fingerprint",
    "components.validation.component", "components.tuner.task",
    "components.trainer.task", "components.baseline.executor",
    "components.evaluator.executor", "components.pusher.executor",
    "components.scoring.executor", "components.report.executor")

# Imports every entry module with `__import__` watched: each import statement
# that runs (also of a module loaded already) is an edge importer -> module.
IMPORTS_SCRIPT = r"""
import builtins, collections, importlib, json, sys
PROJECT = ("components", "pipeline", "serving", "mnist_tfx")
edges = collections.defaultdict(set)
real_import = builtins.__import__

def watched(name, globals=None, locals=None, fromlist=(), level=0):
  module = real_import(name, globals, locals, fromlist, level)
  importer = (globals or {}).get("__name__", "")
  if importer.split(".")[0] in PROJECT:
    if level:
      base = (globals.get("__package__") or "").rsplit(".", level - 1)[0]
      name = f"{base}.{name}" if name else base
    edges[importer].add(name)
    for item in fromlist or ():
      if f"{name}.{item}" in sys.modules:
        edges[importer].add(f"{name}.{item}")
  return module

builtins.__import__ = watched
for entry in sys.argv[1:]:
  importlib.import_module(entry)

def reached(entry):
  seen, todo = set(), [entry]
  while todo:
    module = todo.pop()
    parts = module.split(".")
    for i in range(1, len(parts) + 1):  # the packages on the way
      name = ".".join(parts[:i])
      if name not in seen and name.split(".")[0] in PROJECT:
        seen.add(name)
        todo.extend(edges.get(name, ()))
  return sorted(m for m in seen if m in sys.modules)

print("RESULT " + json.dumps({e: reached(e) for e in sys.argv[1:]}))
"""


@pytest.mark.slow
def test_a_fingerprint_covers_every_module_its_code_imports():
  """What Python really imports for each component's code (watched as it
  runs) is in the modules its fingerprint follows, which also sees imports
  inside functions (e.g. the scoring's `components.scoring.predict` loading the export
  code)."""
  done = subprocess.run(
      [sys.executable, "-c", IMPORTS_SCRIPT, *ENTRY_MODULES], cwd=REPO,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True,
      text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  (line,) = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
  for entry, imported in json.loads(line[len("RESULT "):]).items():
    assert entry in imported
    assert set(imported) <= fingerprint.project_modules(entry), entry
  assert "components.trainer.export" in fingerprint.project_modules(
      "components.scoring.executor")  # imported inside a function
