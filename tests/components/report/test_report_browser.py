"""The HTML report in a real browser (headless Chromium): it renders, and
every picture loads from the page itself."""
import numpy as np
import pytest

from components.report import render
from tests.components.report.test_report import _summary
from tests.components.report.test_report import _write
from tests.conftest import open_report_in_browser

# Needs Chromium (`make browser`): in `make test`, not in `make test-fast`
# (conftest marks every user of the `browser` fixture so, too).
pytestmark = pytest.mark.browser


def test_html_report_renders_with_its_pictures_in_chromium(browser, tmp_path):
  summary = _summary()
  _write(summary, tmp_path)
  (tmp_path / "report").rename(tmp_path / "moved")  # no files to lean on
  seen = open_report_in_browser(browser, str(tmp_path / render.HTML_FILE),
                                str(tmp_path / "screenshot.png"))
  assert seen["title"] == "Run report: mnist-tfx-fashion-mnist"
  assert seen["verdict"] == "Verdict: " + summary["verdict"]
  assert len(seen["images"]) == 2
  for width, height in seen["images"]:  # decoded, at the plots' size
    assert width >= 500 and height >= 400
  assert seen["table_rows"] >= 4 + 4 + 3  # metrics, data, per-class tables
  assert seen["fetched"] == []  # self-contained: nothing else was loaded
  shot = (tmp_path / "screenshot.png").read_bytes()
  assert shot[:4] == b"\x89PNG"
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
  assert pixels.std() > 10  # not a blank page
