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
  """The preset table: layers, recipe, callbacks and the course's accuracy."""
  from components.trainer import models  # pylint: disable=g-import-not-at-top
  header = ("preset", "layers", "optimizer", "batch", "epochs", "callbacks",
            "course accuracy")
  rows = []
  for name, preset in models.PRESETS.items():
    lr = f" {preset.learning_rate:g}" if preset.learning_rate else ""
    callbacks = ", ".join(
        f"{label}({patience})" for label, patience in
        (("early stop", preset.early_stopping_patience),
         ("lr/2", preset.reduce_lr_patience)) if patience) or "-"
    accuracy = (f"{preset.course_accuracy:.3f} {preset.course_metric}"
                if preset.course_accuracy else "-")
    rows.append((name, models.layers_summary(preset), preset.optimizer + lr,
                 str(preset.batch_size), str(preset.epochs), callbacks,
                 accuracy))
  widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
  lines = ["MODEL= presets (the course's recipes; every setting can be "
           "overridden):"]
  for row in [header] + rows:
    lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths))
                 .rstrip())
  lines.append("  " + ", ".join(f"{family} = {preset}" for family, preset in
                                sorted(models.FAMILY_DEFAULTS.items())))
  lines.append("OPTIMIZER= " + ", ".join(models.OPTIMIZERS) +
               "  (momentum/nesterov: SGD with momentum 0.9)")
  lines.append("also: LEARNING_RATE=, EPOCHS=, BATCH_SIZE=, "
               "EARLY_STOPPING_PATIENCE=, REDUCE_LR_PATIENCE= (default: the "
               "preset's), MIXED_PRECISION=1")
  return "\n".join(lines)


def _predict(args) -> int:
  from components.ingestion import idx  # pylint: disable=g-import-not-at-top
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  from serving import predict  # pylint: disable=g-import-not-at-top
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
  from components import storage  # pylint: disable=g-import-not-at-top
  storage.exit_process(main())  # no teardown abort after S3 use
