"""The package a user installs is the code's real needs: the schemas travel
as package data, `install_requires` states requirements.in, and test tools
stay out of the run-time lock (the Kubeflow image's)."""
import pytest
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

from packaging import requirements

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requirements(path):
  with open(os.path.join(REPO, path)) as f:
    lines = [l.split("#")[0].strip() for l in f]
  return [requirements.Requirement(l) for l in lines if l]


def _key(requirement):
  return (requirement.name.lower().replace("_", "-"),
          tuple(sorted(requirement.extras)), str(requirement.specifier))


def _pins(path):
  with open(os.path.join(REPO, path)) as f:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", f.read(), re.M))


def test_install_requires_states_requirements_in():
  installed = [requirements.Requirement(r) for r in
               importlib.metadata.requires("mnist-tfx-pipeline")]
  assert sorted(map(_key, installed)) == sorted(
      map(_key, _requirements("requirements.in")))


def test_test_tools_are_not_in_the_images_lock():
  runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
  for tool in _requirements("requirements-dev.in"):
    assert tool.name in dev
    assert tool.name not in runtime, f"{tool.name} would go into the image"
  # One environment: where both locks pin a package, they pin it alike.
  assert {k: v for k, v in dev.items() if runtime.get(k, v) != v} == {}


@pytest.mark.slow
def test_an_installed_wheel_finds_its_schemas(tmp_path):
  """A non-editable install (a wheel, as a user's `pip install` gets) holds
  the schemas and the config finds them there, not beside a checkout."""
  source = tmp_path / "source"  # setuptools builds inside the source tree
  source.mkdir()
  for name in ("setup.py", "mnist_tfx.py"):
    shutil.copy(os.path.join(REPO, name), source / name)
  for package in ("components", "pipeline", "serving", "schemas"):
    shutil.copytree(os.path.join(REPO, package), source / package,
                    ignore=shutil.ignore_patterns("__pycache__"))
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                  "--no-build-isolation", "-w", str(tmp_path / "wheel"),
                  str(source)], check=True, cwd=str(tmp_path))
  wheel = next((tmp_path / "wheel").glob("*.whl"))
  target = tmp_path / "site"
  subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                  "--no-deps", "--target", str(target), str(wheel)],
                 check=True)
  found = subprocess.run(
      [sys.executable, "-c",
       "import os; from pipeline import config;"
       "c = config.PipelineConfig(dataset='fashion_mnist');"
       "print(c.schema_path, os.path.isfile(c.schema_path))"],
      env=dict(os.environ, PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="3"),
      cwd=str(tmp_path), check=True, capture_output=True, text=True)
  path, exists = found.stdout.split()
  assert path.startswith(str(target)) and exists == "True", found.stdout
