"""Figure 3: ingestion, statistics and evaluation on 1x, 2x, 4x and 8x the
training data (the official images repeated, each copy shifted by a
pixel), each stage in a process of its own: time per example and peak
memory, 8x against 1x."""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable, Dict, List

import numpy as np

from tools.bench import stages
from tools.bench.pairs import Row

SCALES = (1, 2, 4, 8)
STAGES = stages.STAGES
# --quick: scaling from this fraction of the training set.
QUICK_SCALING_BASE = 1 / 32


def make_scaled_dataset(data_dir: str, target: str, scale: float) -> str:
  """IDX files with the official training images repeated `scale` times
  (a fraction: the first part of them), copy k shifted right by k pixels;
  the official test files as they are. Written copy by copy."""
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  import gzip  # pylint: disable=g-import-not-at-top
  import struct  # pylint: disable=g-import-not-at-top
  os.makedirs(target, exist_ok=True)
  images = idx.parse_images(idx.read_bytes(os.path.join(
      data_dir, "train-images-idx3-ubyte.gz")), "train images")
  labels = idx.parse_labels(idx.read_bytes(os.path.join(
      data_dir, "train-labels-idx1-ubyte.gz")), "train labels")
  total = int(round(len(images) * scale))
  copies = -(-total // len(images))
  with gzip.open(os.path.join(target, "train-images-idx3-ubyte.gz"), "wb",
                 compresslevel=1) as f:
    f.write(struct.pack(">IIII", idx.IMAGES_MAGIC, total, 28, 28))
    left = total
    for k in range(copies):
      part = np.roll(images, k, axis=2)[:left]
      f.write(part.tobytes())
      left -= len(part)
  idx.write_idx(os.path.join(target, "train-labels-idx1-ubyte.gz"),
                np.tile(labels, copies)[:total])
  for stem in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    shutil.copy(os.path.join(data_dir, stem), target)
  return target


def bench_scaling(data_dir: str, out: str, model_uri: str,
                  base: float) -> Dict[str, Any]:
  results: Dict[str, Any] = {stage: {} for stage in STAGES}
  for scale in SCALES:
    print(f"[bench] scaling {scale}x ...", flush=True)
    source = make_scaled_dataset(data_dir, os.path.join(out, f"idx{scale}"),
                                 base * scale)
    examples = os.path.join(out, f"examples{scale}")
    results["ingestion"][scale] = stages.run_stage("ingestion", source,
                                                   examples)
    results["statistics"][scale] = stages.run_stage(
        "statistics", examples, os.path.join(out, f"stats{scale}"))
    results["evaluation"][scale] = stages.run_stage(
        "evaluation", examples, os.path.join(out, f"eval{scale}"), model_uri)
    shutil.rmtree(source)
    shutil.rmtree(examples)
  for stage in STAGES:
    one, eight = results[stage][SCALES[0]], results[stage][SCALES[-1]]
    results[stage]["time_per_example_8x_vs_1x"] = round(
        eight["us_per_example"] / one["us_per_example"], 3)
    results[stage]["peak_rss_8x_vs_1x"] = round(
        eight["peak_rss_gib"] / one["peak_rss_gib"], 3)
  return results


def rows(results: Dict[str, Any], verdict: Callable[[str], str]
         ) -> List[Row]:
  """The table's rows of figure 3."""
  out: List[Row] = []
  scaling = results["scaling"]
  for stage in STAGES:
    per = scaling[stage]
    one, eight = per[SCALES[0]], per[SCALES[-1]]
    out += [
        (f"{stage}: time/example 8x vs 1x",
         f"{eight['us_per_example']:.1f} vs {one['us_per_example']:.1f} us "
         f"({eight['examples']:,} vs {one['examples']:,} ex) = "
         f"{per['time_per_example_8x_vs_1x']:.2f}x", "<= 1.25x",
         verdict(f"{stage}_time_per_example_8x_vs_1x")),
        (f"{stage}: peak RSS 8x vs 1x",
         f"{eight['peak_rss_gib']:.2f} vs {one['peak_rss_gib']:.2f} GiB = "
         f"{per['peak_rss_8x_vs_1x']:.2f}x", "<= 2x",
         verdict(f"{stage}_peak_rss_8x_vs_1x")),
    ]
  return out


def plot_scaling(results: Dict[str, Any], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  scaling = results["scaling"]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
  for stage in STAGES:
    xs = [scaling[stage][s]["examples"] for s in SCALES]
    left.plot(xs, [scaling[stage][s]["seconds"] for s in SCALES], "o-",
              label=stage)
    right.plot(xs, [scaling[stage][s]["peak_rss_gib"] for s in SCALES],
               "o-", label=stage)
  left.set(xlabel="examples processed", ylabel="seconds",
           title="time (linear = straight line through 0)")
  right.set(xlabel="examples processed", ylabel="peak RSS (GiB)",
            title="peak memory of the stage's process", ylim=(0, None))
  left.set_ylim(0, None)
  for ax in (left, right):
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(f"scaling: training data x{', x'.join(map(str, SCALES))} "
               f"({results['machine']})")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
