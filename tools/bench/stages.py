"""One component's work in a process of its own, timed inside it (imports
excluded, as a component's seconds are), for the scaling (figure 3) and the
trainer input (figure 5): ingestion, statistics (the pipeline's
StatisticsGen executor, every split) and evaluation (our Evaluator
executor, TFMA on the eval split, no baseline)."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Optional

from tools.bench import common

STAGES = ("ingestion", "statistics", "evaluation")


def stage_main(stage: str, source: str, out: str,
               model_uri: Optional[str]) -> Dict[str, Any]:
  """Runs one stage in this process (called as `--stage`); imports are done
  before the clock starts."""
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.ingestion import ingest  # pylint: disable=g-import-not-at-top
  from components.ingestion import split  # pylint: disable=g-import-not-at-top

  def artifact(kind, uri, splits=None):
    a = kind()
    a.uri = uri
    if splits:
      a.split_names = artifact_utils.encode_split_names(splits)
    return a

  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=common.BEAM_ARGS, tmp_dir=os.path.join(out, "tmp"),
      unique_id="bench")
  if stage == "ingestion":
    start = time.perf_counter()
    result = ingest.ingest(out, dataset="mnist", seed=42, train_fraction=0.7,
                           data_dir=source)
    return {"seconds": time.perf_counter() - start,
            "examples": sum(result.counts.values()), "counts": result.counts}
  examples = artifact(standard_artifacts.Examples, source,
                      list(split.SPLIT_NAMES))
  if stage == "statistics":
    from components.statistics import component  # pylint: disable=g-import-not-at-top
    from components.statistics import executor  # pylint: disable=g-import-not-at-top
    # The pipeline's StatisticsGen: its executor and options (in process).
    options = component.stats_options()
    start = time.perf_counter()
    executor.Executor(context).Do(
        {"examples": [examples]},
        {"statistics": [artifact(standard_artifacts.ExampleStatistics,
                                 os.path.join(out, "statistics"))]},
        {"stats_options_json": options.to_json(), "exclude_splits": "[]"})
    return {"seconds": time.perf_counter() - start,
            "examples": count_examples(source, split.SPLIT_NAMES)}
  if stage == "evaluation":
    from tfx.utils import proto_utils  # pylint: disable=g-import-not-at-top
    from components.evaluator import eval_config  # pylint: disable=g-import-not-at-top
    from components.evaluator import executor  # pylint: disable=g-import-not-at-top
    config = eval_config.make_eval_config(0.9, 0.002)
    start = time.perf_counter()
    executor.Executor(context).Do(
        {"examples": [examples],
         "model": [artifact(standard_artifacts.Model, model_uri)]},
        {"evaluation": [artifact(standard_artifacts.ModelEvaluation,
                                 os.path.join(out, "evaluation"))],
         "blessing": [artifact(standard_artifacts.ModelBlessing,
                               os.path.join(out, "blessing"))]},
        {"eval_config": proto_utils.proto_to_json(config),
         "example_splits": json.dumps(["eval"])})
    return {"seconds": time.perf_counter() - start,
            "examples": count_examples(source, ["eval"])}
  raise ValueError(f"unknown stage {stage!r}")


def count_examples(examples_uri: str, splits) -> int:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = [f for name in splits for f in tf.io.gfile.glob(
      os.path.join(examples_uri, f"Split-{name}", "*"))]
  return int(sum(1 for _ in tf.data.TFRecordDataset(
      files, compression_type="GZIP", buffer_size=1 << 20)))


def run_stage(stage: str, source: str, out: str,
              model_uri: Optional[str] = None) -> Dict[str, Any]:
  """`stage` (a component's, or a floor's) in a process of its own
  (`python -m tools.bench --stage`): its seconds as timed inside the
  process, per example, and the process's peak RSS."""
  os.makedirs(out, exist_ok=True)
  argv = [sys.executable, "-m", "tools.bench", "--stage", stage,
          "--source", source, "--out", out]
  if model_uri:
    argv += ["--model", model_uri]
  result = common.run_process(
      argv, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  line = [l for l in result.pop("output").splitlines()
          if l.startswith("BENCH_STAGE ")][-1]
  stage_result = json.loads(line[len("BENCH_STAGE "):])
  seconds, examples = stage_result["seconds"], stage_result["examples"]
  return dict(stage_result, seconds=round(seconds, 2),
              us_per_example=round(seconds / examples * 1e6, 2),
              peak_rss_gib=result["peak_rss_gib"],
              process_wall_seconds=result["wall_seconds"])


def profile_stage(stage: str, data_dir: str, out: str,
                  model_uri: Optional[str]) -> None:
  import cProfile  # pylint: disable=g-import-not-at-top
  import pstats  # pylint: disable=g-import-not-at-top
  source = data_dir
  if stage != "ingestion":
    source = os.path.join(out, "examples")
    stage_main("ingestion", data_dir, source, None)
  profiler = cProfile.Profile()
  profiler.enable()
  result = stage_main(stage, source, os.path.join(out, stage), model_uri)
  profiler.disable()
  print(f"{stage}: {result['seconds']:.2f} s")
  pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
  pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
