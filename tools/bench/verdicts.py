"""The bench's targets, their verdicts and the printed table (each
figure's rows come from its own module)."""
from __future__ import annotations

from typing import Any, Dict

from tools.bench import common
from tools.bench import floors
from tools.bench import gpu
from tools.bench import pairs
from tools.bench import scaling
from tools.bench import trainer_input

STAGES = scaling.STAGES
# Goal: (comparison, limit).
TARGETS = {
    "dag_vs_script": ("<=", 1.5),
    "unchanged_rerun_seconds": ("<=", 5.0),
    **{f"{stage}_time_per_example_8x_vs_1x": ("<=", 1.25)
       for stage in STAGES},
    **{f"{stage}_peak_rss_8x_vs_1x": ("<=", 2.0) for stage in STAGES},
    "trainer_input_vs_numpy": (">=", 0.9),
    "gpu_cnn_epoch_vs_script": ("<=", 1.1),
}


def verdicts(results: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  dag = results["dag"]
  measured = {
      "dag_vs_script": common.spread(dag["ratios"])["median"],
      "unchanged_rerun_seconds": dag["unchanged_rerun"]["wall_seconds"],
  }
  for stage in STAGES:
    for key in ("time_per_example_8x_vs_1x", "peak_rss_8x_vs_1x"):
      measured[f"{stage}_{key}"] = results["scaling"][stage][key]
  cnn = results.get("cnn") or {}
  if cnn.get("device") == "GPU" and cnn.get("script_device") == "GPU":
    measured["gpu_cnn_epoch_vs_script"] = cnn["ratio"]
  if results.get("trainer"):
    measured["trainer_input_vs_numpy"] = min(
        r["ratio"] for r in results["trainer"].values())
  out = {}
  for key, (op, goal) in TARGETS.items():
    if key not in measured:
      out[key] = {"value": None, "target": f"{op} {goal}", "met": None}
      continue
    value = round(float(measured[key]), 3)
    met = value <= goal if op == "<=" else value >= goal
    out[key] = {"value": value, "target": f"{op} {goal}", "met": met}
  return out


def table(results: Dict[str, Any]) -> str:
  """Every figure's rows: figure, value, target, verdict."""
  targets = results["targets"]

  def verdict(key):
    met = targets[key]["met"]
    return "not measured" if met is None else ("pass" if met else "FAIL")

  rows = (pairs.dag_rows(results, verdict) + floors.rows(results, verdict) +
          pairs.rerun_rows(results, verdict) +
          scaling.rows(results, verdict) +
          trainer_input.rows(results, verdict) + gpu.rows(results, verdict))
  widths = [max(len(r[i]) for r in rows + [("figure", "value", "target",
                                            "verdict")]) for i in range(4)]
  line = lambda r: "| " + " | ".join(  # noqa: E731
      f"{c:<{w}}" for c, w in zip(r, widths)) + " |"
  return "\n".join([line(("figure", "value", "target", "verdict")),
                    line(tuple("-" * w for w in widths))] +
                   [line(r) for r in rows])
