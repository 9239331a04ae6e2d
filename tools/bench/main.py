"""`python -m tools.bench` (`make bench`): every figure, the table, the
files; `--stage` runs one measured stage in this process."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import tools.bench as bench
from tools.bench import common
from tools.bench import floors
from tools.bench import gpu
from tools.bench import pairs
from tools.bench import scaling
from tools.bench import stages
from tools.bench import trainer_input
from tools.bench import verdicts


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=bench.__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      default=bool(os.environ.get("BENCH_QUICK")))
  parser.add_argument("--stage",
                      choices=stages.STAGES + floors.FLOOR_STAGES)
  parser.add_argument("--profile", choices=stages.STAGES)
  parser.add_argument("--source")
  parser.add_argument("--out")
  parser.add_argument("--model")
  args = parser.parse_args(argv)
  if args.stage:  # one scaling stage, in its own process
    run = (floors.stage_main if args.stage in floors.FLOOR_STAGES else
           stages.stage_main)
    result = run(args.stage, args.source, args.out, args.model)
    print("BENCH_STAGE " + json.dumps(result), flush=True)
    return 0
  data_dir = os.environ.get("BENCH_DATA_DIR") or os.path.join(
      common.DEFAULT_DATASETS_DIR, "mnist")
  if not os.path.isdir(data_dir):
    print(f"error: no MNIST IDX files at {data_dir}: set BENCH_DATA_DIR",
          file=sys.stderr)
    return 1
  if args.profile:
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
      stages.profile_stage(args.profile, data_dir, tmp, args.model)
    return 0
  out_dir = os.environ.get("BENCH_OUTPUT_DIR") or os.path.join(
      common.REPO, "outputs", "bench")
  os.makedirs(out_dir, exist_ok=True)
  epochs = 1 if args.quick else 5
  max_examples = pairs.QUICK_MAX_EXAMPLES if args.quick else 0
  results: Dict[str, Any] = {
      "date": time.strftime("%Y-%m-%d"), "quick": args.quick,
      "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, "
                 f"{common.memory_gib()} GiB, "
                 f"Python {platform.python_version()}",
  }
  started = time.perf_counter()
  with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
    results["dag"] = pairs.bench_dag(data_dir, tmp, epochs, max_examples,
                                     pairs=1 if args.quick else pairs.PAIRS)
    if not args.quick:  # for the record, no target
      print("[bench] the plain script on Keras 2 (tf_keras) ...", flush=True)
      results["script_tf_keras"] = pairs.run_plain_script(
          data_dir, tmp, epochs, script=pairs.TF_KERAS_SCRIPT)
      results["floor"] = floors.bench_floor(results["dag"],
                                            os.path.join(tmp, "floor"))
    base = scaling.QUICK_SCALING_BASE if args.quick else 1.0
    results["scaling"] = scaling.bench_scaling(
        data_dir, os.path.join(tmp, "scaling"), results["dag"]["model_uri"],
        base)
    results["scaling"]["base_fraction_of_mnist"] = base
    results["trainer"] = {}
    if not args.quick:
      print("[bench] trainer input vs numpy ...", flush=True)
      examples = os.path.join(tmp, "examples")
      stages.run_stage("ingestion", data_dir, examples)
      results["trainer"] = trainer_input.bench_trainer(
          examples, list(trainer_input.TRAINER_BENCH))
  results["gpus"] = common.gpus()
  if results["gpus"] or not args.quick:
    print("[bench] CNN epochs: the pipeline's Trainer vs a plain script ...",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cnn-") as tmp:
      results["cnn"] = gpu.bench_cnn(data_dir, tmp, gpu=bool(results["gpus"]))
  results["bench_seconds"] = round(time.perf_counter() - started, 1)
  results["targets"] = verdicts.verdicts(results)
  with open(os.path.join(out_dir, "bench.json"), "w") as f:
    json.dump(results, f, indent=2, default=str)
  scaling.plot_scaling(results, os.path.join(out_dir, "bench.png"))
  pairs.plot_dag(results, os.path.join(out_dir, "dag.png"))
  print(f"\n{results['date']}, {results['machine']}"
        f"{', QUICK' if args.quick else ''} "
        f"({results['bench_seconds']:.0f} s)\n")
  print(verdicts.table(results))
  missed = [k for k, v in results["targets"].items() if v["met"] is False]
  print(f"\ntargets missed: {', '.join(missed)}" if missed else
        "\nall measured targets met")
  print(f"written: {out_dir}/bench.json, {out_dir}/bench.png (scaling), "
        f"{out_dir}/dag.png")
  return 0
