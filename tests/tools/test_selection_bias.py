"""The selection-bias estimator behind docs/reliability.md's figures."""
import math

import numpy as np

from tools import selection_bias


def test_selecting_among_equals_is_optimistic_by_the_order_statistics():
  """Ten candidates, each right on an independent 90% of 20,000 examples:
  the best of them on one half scores on the other half what any of them
  does, so the optimism is the expected maximum of ten accuracies' noise
  (about 1.54 standard deviations of a half's accuracy)."""
  rng = np.random.default_rng(0)
  correct = rng.random((10, 20_000)) < 0.9
  result = selection_bias.optimism(correct, rounds=400)
  sigma = math.sqrt(0.9 * 0.1 / 10_000)
  assert 1.2 * sigma < result["optimism_half_split"] < 1.9 * sigma
  assert result["optimism_whole_split"] == \
      result["optimism_half_split"] / math.sqrt(2)


def test_one_clearly_better_or_identical_candidates_are_not_optimistic():
  rng = np.random.default_rng(1)
  worse = rng.random((4, 20_000)) < 0.80
  better = rng.random((1, 20_000)) < 0.95
  result = selection_bias.optimism(np.concatenate([worse, better]),
                                   rounds=200)
  assert result["picked_another_than_the_best"] == 0
  assert abs(result["optimism_half_split"]) < 4 * result[
      "optimism_std_error"] + 1e-9
  same = selection_bias.optimism(np.repeat(better, 3, axis=0), rounds=200)
  assert abs(same["optimism_half_split"]) < 4 * same["optimism_std_error"]
