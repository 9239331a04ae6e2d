"""How much the eval split flatters the model that was selected on it.

The Trainer exports the epoch with the best accuracy on `eval`, and a
Tuner ranks its trials on `eval`; the Evaluator then gates on that same
split, with a tolerance of MAX_ACCURACY_DROP (0.002). A model picked as the
best of several on a split scores higher there than it would on fresh
examples: its selection's optimism. This measures it on the real data.

Every candidate's per-example correctness on `eval` is recorded (each
epoch of a preset's training; or each epoch of each of a random search's
trials). Then, R times, `eval` is cut at random into halves A and B: the
candidate best on A is scored on B. `mean(acc_A - acc_B)` of that
candidate is the optimism of selecting on n/2 examples; on the whole split
(n examples) it is about that divided by sqrt(2) (the noise it feeds on
shrinks as 1/sqrt(n)), the figure to hold against the tolerance.

    python -m tools.selection_bias --data-dir ../shared/datasets/mnist
        [--dataset mnist] [--model dense_512] [--trials 15 --trial-epochs 3]

`--trials 0`: the preset's epochs only (what every run selects among).
"""
from __future__ import annotations

import argparse
import json
import math
import random
from typing import Dict, List, Sequence

import numpy as np

import components  # noqa: F401  pylint: disable=unused-import  (Keras 2 first)
from components.ingestion import sources
from components.ingestion import split as split_lib
from components.trainer import hparams
from components.trainer import models
from components.tuner import search_space

SEED = 42


def optimism(correct: np.ndarray, rounds: int = 2000,
             seed: int = SEED) -> Dict[str, float]:
  """`correct`: [candidates, examples] booleans. The optimism of picking
  the best candidate on a random half, on the other half and scaled to the
  whole split; and how often the pick was not the best on the whole."""
  rng = np.random.default_rng(seed)
  n = correct.shape[1]
  gaps, other = [], 0
  overall_best = int(np.argmax(correct.mean(axis=1)))
  for _ in range(rounds):
    in_a = np.zeros(n, bool)
    in_a[rng.choice(n, n // 2, replace=False)] = True
    on_a = correct[:, in_a].mean(axis=1)
    picked = int(np.argmax(on_a))
    gaps.append(on_a[picked] - correct[picked, ~in_a].mean())
    other += picked != overall_best
  half = float(np.mean(gaps))
  return {"candidates": int(correct.shape[0]), "eval_examples": int(n),
          "optimism_half_split": half,
          "optimism_std_error": float(np.std(gaps) / math.sqrt(rounds)),
          "optimism_whole_split": half / math.sqrt(2),
          "picked_another_than_the_best": other / rounds}


def _fit(config: hparams.TrainerConfig, train, eval_split) -> List[np.ndarray]:
  """Trains `config`; the correctness on eval after each epoch."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  config = config.resolved()
  keras.utils.set_random_seed(config.seed)
  model = models.build_model(config.preset)
  models.compile_model(model, config.optimizer, config.learning_rate)
  per_epoch = []

  class Record(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      predicted = np.argmax(model.predict(eval_split.images, batch_size=4096,
                                          verbose=0), axis=1)
      per_epoch.append(predicted == eval_split.labels)
      print(f"  epoch {epoch + 1}: eval accuracy {per_epoch[-1].mean():.4f}",
            flush=True)

  data = tf.data.Dataset.from_tensor_slices(
      (train.images, train.labels)).shuffle(
          len(train.labels), seed=config.seed).batch(config.batch_size)
  model.fit(data, epochs=config.epochs, callbacks=[Record()], verbose=0)
  return per_epoch


def _random_trials(count: int, epochs: int, seed: int
                   ) -> List[hparams.TrainerConfig]:
  """A random search over the Tuner's dense space (`search_space`)."""
  rng = random.Random(seed)
  trials = []
  for _ in range(count):
    values = {"family": "dense",
              "dense_layers": rng.choice(search_space.DENSE_LAYERS),
              "units": rng.choice(search_space.UNITS),
              "activation": rng.choice(search_space.ACTIVATIONS),
              "dropout": rng.choice(search_space.DROPOUTS),
              "optimizer": rng.choice(models.OPTIMIZERS),
              "batch_size": rng.choice(search_space.BATCH_SIZES),
              "learning_rate_scale": math.exp(rng.uniform(
                  *map(math.log, search_space.LEARNING_RATE_SCALES)))}
    trials.append(hparams.TrainerConfig(hyperparameters=values,
                                        epochs=epochs, seed=seed))
  return trials


def main(argv: Sequence[str] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data-dir", required=True)
  parser.add_argument("--dataset", default="mnist")
  parser.add_argument("--model", default="dense_512")
  parser.add_argument("--trials", type=int, default=0)
  parser.add_argument("--trial-epochs", type=int, default=3)
  args = parser.parse_args(argv)
  raw = sources.load_raw_dataset(args.dataset, data_dir=args.data_dir)
  splits = split_lib.split_dataset(
      raw.train_images, raw.train_labels, raw.test_images, raw.test_labels,
      seed=SEED)
  if args.trials:
    configs = _random_trials(args.trials, args.trial_epochs, SEED)
  else:
    configs = [hparams.TrainerConfig(model=args.model, seed=SEED)]
  correct = []
  for i, config in enumerate(configs):
    print(f"candidate set {i + 1}/{len(configs)}: "
          f"{config.resolved().model_label}", flush=True)
    correct.extend(_fit(config, splits["train"], splits["eval"]))
  result = {"dataset": args.dataset,
            "selection": (f"{args.trials} random trials x "
                          f"{args.trial_epochs} epochs" if args.trials else
                          f"the epochs of {args.model}"),
            **optimism(np.stack(correct))}
  print(json.dumps(result, indent=2))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
