"""`mnist-tfx` command line: run the pipeline, list models, classify images.

  mnist-tfx run        same as `make run-local` (settings from environment)
  mnist-tfx models     model presets and optimizers
  mnist-tfx predict    classify images (see `mnist-tfx predict --help`)
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def list_models() -> str:
  from components.trainer import models  # pylint: disable=g-import-not-at-top
  lines = ["MODEL= presets (defaults: optimizer, batch size, epochs):"]
  for name, preset in sorted(models.PRESETS.items()):
    lines.append(f"  {name:<24} {preset.description}  "
                 f"[{preset.optimizer}, batch {preset.batch_size}, "
                 f"{preset.epochs} epochs]")
  lines.append("  " + ", ".join(f"{family} = {preset}" for family, preset in
                                sorted(models.FAMILY_DEFAULTS.items())))
  lines.append("OPTIMIZER= " + ", ".join(models.OPTIMIZERS) +
               "  (momentum/nesterov: SGD with momentum 0.9)")
  lines.append("also: LEARNING_RATE=, EPOCHS=, BATCH_SIZE=, "
               "EARLY_STOPPING_PATIENCE=, REDUCE_LR_PATIENCE=, MIXED_PRECISION=1")
  return "\n".join(lines)


def _predict(args) -> int:
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  from pipeline import predict  # pylint: disable=g-import-not-at-top
  paths = args.images or os.environ.get("IMAGES", "").split()
  try:
    config = config_lib.PipelineConfig.from_env()
    model_dir = args.model_dir or predict.latest_pushed_model(
        config.serving_model_dir)
    text, _ = predict.run(paths, model_dir, config.dataset, args.limit)
  except (idx.DataError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"model: {model_dir}")
  print(text)
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="mnist-tfx", description=__doc__,
                                   formatter_class=argparse.RawTextHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)
  commands.add_parser("run", help="run the pipeline (settings from env)")
  commands.add_parser("models", help="list model presets and optimizers")
  predict_parser = commands.add_parser(
      "predict", help="classify IDX or PNG images with a SavedModel")
  predict_parser.add_argument(
      "images", nargs="*", help="an IDX images file and/or PNG files "
      "(default: $IMAGES)")
  predict_parser.add_argument(
      "--model-dir", default=os.environ.get("MODEL_DIR") or None,
      help="a SavedModel (default: the latest version pushed for DATASET)")
  predict_parser.add_argument(
      "--limit", type=int, default=10,
      help="classify at most this many images of an IDX file (default 10)")
  args = parser.parse_args(argv)
  if args.command == "models":
    print(list_models())
    return 0
  if args.command == "predict":
    return _predict(args)
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  return local_runner.main()


if __name__ == "__main__":
  sys.exit(main())
