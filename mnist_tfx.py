"""`mnist-tfx` command line: run the pipeline, list models, classify images.

  mnist-tfx run        same as `make run-local` (settings from environment)
  mnist-tfx models     model presets and optimizers
  mnist-tfx predict    classify images (see `mnist-tfx predict --help`)
  mnist-tfx runs       the runs of OUTPUT_DIR, one row each (--sort, --json)
  mnist-tfx compare    train each of MODELS in turn, write one comparison page
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
  from components.scoring import predict  # pylint: disable=g-import-not-at-top
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


def _runs(args) -> int:
  from pipeline import runs  # pylint: disable=g-import-not-at-top
  try:
    output_dir = args.output_dir or runs.default_output_dir()
    print(runs.main(output_dir, sort=args.sort, as_json=args.json))
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


def _compare(args) -> int:
  from pipeline import compare  # pylint: disable=g-import-not-at-top
  from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  from pipeline import exits  # pylint: disable=g-import-not-at-top
  names = args.models or os.environ.get("MODELS", "").split()
  try:
    compare.check_models(names)  # before anything is trained
    config = config_lib.PipelineConfig.from_env()
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  try:
    result = compare.compare(config, names)
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130
  except Exception as e:  # pylint: disable=broad-except
    if os.environ.get("VERBOSE"):
      raise
    print(f"error: {exits.one_line(exits.root_cause(e))}",
          file=sys.stderr)
    return 1
  for e in result["models"]:
    print(f"{e['model']:<24} eval {e['eval_accuracy']:.4f}  test "
          f"{e['test_accuracy']:.4f}  {e['verdict']}")
  print(f"comparison: {result['page']['html']}")
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
  runs_parser = commands.add_parser(
      "runs", help="the runs of OUTPUT_DIR, one row each")
  runs_parser.add_argument("--sort", choices=("date", "accuracy"),
                           default="date", help="date (oldest first, the "
                           "default) or accuracy (best test accuracy first)")
  runs_parser.add_argument("--json", action="store_true",
                           help="the rows as JSON, for scripts")
  runs_parser.add_argument("--output-dir", default=None,
                           help="default: $OUTPUT_DIR, else outputs/")
  compare_parser = commands.add_parser(
      "compare", help="train each model preset in turn, one comparison page")
  compare_parser.add_argument(
      "models", nargs="*", help="model presets (default: $MODELS)")
  args = parser.parse_args(argv)
  if args.command == "runs":
    return _runs(args)
  if args.command == "compare":
    return _compare(args)
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
