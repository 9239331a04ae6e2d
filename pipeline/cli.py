"""`mnist-tfx` command line: run the pipeline, list models, classify images.

  mnist-tfx run        same as `make run-local` (settings from environment)
  mnist-tfx models     model presets and optimizers
  mnist-tfx predict    classify images (see `mnist-tfx predict --help`)
"""
from __future__ import annotations

import argparse
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
               "EARLY_STOPPING_PATIENCE=, MIXED_PRECISION=1")
  return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="mnist-tfx", description=__doc__,
                                   formatter_class=argparse.RawTextHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)
  commands.add_parser("run", help="run the pipeline (settings from env)")
  commands.add_parser("models", help="list model presets and optimizers")
  args = parser.parse_args(argv)
  if args.command == "models":
    print(list_models())
    return 0
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  return local_runner.main()


if __name__ == "__main__":
  sys.exit(main())
