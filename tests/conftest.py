"""Shared fixtures: the real datasets beside the checkout and tiny fakes."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import components  # noqa: E402,F401  (Keras 2, before TensorFlow loads)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from components.ingestion import idx  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
  """TFX's Beam executors parse `sys.argv` as absl flags together with their
  Beam arguments, so pytest's own `-v` took the next Beam argument as its
  value and every StatisticsGen failed: the runs in tests see no argv."""
  del config
  sys.argv[1:] = []


def pytest_collection_modifyitems(config, items):
  """Every test that opens Chromium (the `browser` fixture) is marked
  `browser`: `make test-fast` leaves those out, so it needs no Chromium
  (`make test` installs it and runs them).

  `make test` runs two lanes (pytest-xdist, `--dist loadgroup`): the tests
  of a module that share a module-scoped fixture (a scenario's runs, a
  trained model) are one group, run in one lane in order; every other test
  goes to whichever lane is free."""
  del config
  for item in items:
    if "browser" in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.browser)
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures and any(d.scope == "module" for defs in
                        fixtures.name2fixturedefs.values() for d in defs):
      item.add_marker(pytest.mark.xdist_group(item.module.__name__))


_EXIT_STATUS = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
  del session
  _EXIT_STATUS["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
  """Ends pytest with its own status and no interpreter teardown, as the
  command-line entry points do (`components.storage.exit_process`): once
  tensorflow-io's S3 client or TF and Beam threads have run in this process,
  teardown can abort ("pure virtual method called", exit 134) after every
  test has passed. Not in a pytest-xdist worker (`make test` runs two):
  the controller waits for the worker's own shutdown over its channel, and
  reports the exit status itself."""
  del config
  if "code" in _EXIT_STATUS and "PYTEST_XDIST_WORKER" not in os.environ:
    from components import storage  # pylint: disable=g-import-not-at-top
    storage.exit_process(_EXIT_STATUS["code"])
# Real MNIST / Fashion-MNIST IDX files: ../shared/datasets beside the checkout.
DATASETS_DIR = os.environ.get("MNIST_DATASETS_DIR") or os.path.join(
    os.path.dirname(REPO_ROOT), "shared", "datasets")


def real_data_dir(name: str) -> str:
  path = os.path.join(DATASETS_DIR, name)
  if not os.path.isdir(path):
    if os.environ.get("CI"):
      pytest.fail(f"{path} missing: CI needs the shared datasets")
    pytest.skip(f"{path} not found (set MNIST_DATASETS_DIR)")
  return path


@pytest.fixture(scope="session")
def mnist_dir() -> str:
  return real_data_dir("mnist")


@pytest.fixture(scope="session")
def fashion_dir() -> str:
  return real_data_dir("fashion_mnist")


def write_fake_dataset(directory, num_train=60, num_test=20, seed=0,
                       gz=True):
  """Writes four IDX files of random 28x28 images whose label is learnable:
  class k has a bright 4x4 block at position k."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  suffix = ".gz" if gz else ""
  for prefix, n in (("train", num_train), ("t10k", num_test)):
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
      r, c = divmod(int(label), 5)
      images[i, 4 + 10 * r:8 + 10 * r, 2 + 5 * c:6 + 5 * c] = 255
    idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"),
                  images)
    idx.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"),
                  labels)
  return str(directory)


@pytest.fixture
def fake_data_dir(tmp_path):
  return write_fake_dataset(tmp_path / "fake_mnist")


@pytest.fixture(scope="session")
def s3_server():
  """A real S3 endpoint on localhost (moto's server mode), with bucket `kfp`;
  yields the environment a client needs to reach it."""
  import boto3  # pylint: disable=g-import-not-at-top
  from moto.server import ThreadedMotoServer  # pylint: disable=g-import-not-at-top
  import logging  # pylint: disable=g-import-not-at-top
  logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line a call
  server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
  server.start()
  host, port = server.get_host_and_port()
  env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
         "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
  boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
               region_name="us-east-1", aws_access_key_id="test",
               aws_secret_access_key="test").create_bucket(Bucket="kfp")
  yield env
  server.stop()


def ingested_files(data_dir, root):
  """Ingests the IDX files in `data_dir` under `root`; returns the Trainer's
  {'train': [glob], 'eval': [glob]} file patterns."""
  from components.ingestion import examples_io, ingest  # pylint: disable=g-import-not-at-top
  examples = os.path.join(str(root), "examples")
  ingest.ingest(examples, dataset="mnist", seed=0, train_fraction=0.7,
                data_dir=data_dir)
  return {split: [os.path.join(examples_io.split_dir(examples, split), "*")]
          for split in ("train", "eval")}


@pytest.fixture(scope="session")
def browser():
  """Headless Chromium (Debian's, driven by its ChromeDriver), which
  `make test` installs."""
  import shutil  # pylint: disable=g-import-not-at-top
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top
  chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
  if not chromium or not chromedriver:
    message = "chromium/chromedriver not installed (make browser)"
    if os.environ.get("CI"):
      pytest.fail(message)
    pytest.skip(message)
  options = webdriver.ChromeOptions()
  options.binary_location = chromium
  for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--window-size=1100,1400"):
    options.add_argument(argument)
  driver = webdriver.Chrome(service=Service(chromedriver), options=options)
  yield driver
  driver.quit()


def open_report_in_browser(driver, html_path: str, screenshot: str):
  """Opens a report.html in the browser; returns what it rendered: the
  title, the verdict line's text, each image's (width, height) as decoded,
  the number of table rows, and whether the page fetched anything besides
  itself. Saves a full-page screenshot to `screenshot`."""
  driver.get("file://" + os.path.abspath(html_path))
  images = driver.execute_script(
      "return Array.from(document.images).map(i => "
      "[i.complete ? i.naturalWidth : 0, i.naturalHeight]);")
  verdict = driver.execute_script(
      "const p = Array.from(document.querySelectorAll('p')).find("
      "e => e.textContent.startsWith('Verdict:')); return p ? p.innerText : null;")
  rows = driver.execute_script("return document.querySelectorAll('tr').length;")
  fetched = driver.execute_script(
      "return performance.getEntriesByType('resource').map(r => r.name);")
  height = driver.execute_script("return document.body.scrollHeight;")
  driver.set_window_size(1100, min(int(height) + 100, 8000))
  driver.save_screenshot(screenshot)
  return {"title": driver.title, "verdict": verdict, "images": images,
          "table_rows": rows, "fetched": fetched}
