"""The emulator's warm start (`tools/kfp_task_server.py`) gives each task
what a fresh `python -m` in a container gives it: its own process, argv,
environment, working directory and exit status, and no state of another
task."""
import json
import os
import sys

from tools import kfp_emulator

PROBE = """
import json, os, signal, sys
import probe_state
probe_state.runs += 1
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                  "path0": sys.path[0], "env": os.environ.get("PROBE"),
                  "runs": probe_state.runs, "name": __name__,
                  "stdin": sys.stdin.read(), "pid": os.getpid()}))
sys.stdout.flush()
if sys.argv[1:] == ["kill"]:
  os.kill(os.getpid(), signal.SIGKILL)
sys.exit(3 if sys.argv[1:] == ["exit"] else 0)
"""


def _run_tasks(tmp_path, warm):
  code = tmp_path / "code"
  code.mkdir(exist_ok=True)
  (code / "probe_task.py").write_text(PROBE)
  (code / "probe_state.py").write_text("runs = 0\n")
  cwd = tmp_path / "cwd"
  cwd.mkdir(exist_ok=True)
  starter = kfp_emulator.TaskStarter(warm=warm, imports=("probe_state",))
  base = {"PYTHONPATH": str(code), "PATH": os.environ["PATH"]}
  # One environment but the second's: tasks share a server where they can.
  tasks = [({"PROBE": "a"}, ["--x", "1"]), ({"PROBE": "b"}, ["{}"]),
           ({"PROBE": "a"}, ["exit"]), ({"PROBE": "a"}, ["kill"])]
  results = []
  try:
    for i, (env, args) in enumerate(tasks):
      log = tmp_path / f"{warm}-{i}.log"
      code_ = starter.run([sys.executable, "-m", "probe_task", *args],
                          {**base, **env}, str(cwd), str(log))
      results.append((code_, json.loads(log.read_text().splitlines()[0])))
  finally:
    starter.close()
  return results


def test_a_warm_task_is_what_a_fresh_python_m_is(tmp_path):
  warm, cold = _run_tasks(tmp_path, True), _run_tasks(tmp_path, False)
  assert [code for code, _ in warm] == [code for code, _ in cold] == [
      0, 0, 3, -9]
  for (_, w), (_, c) in zip(warm, cold):
    assert w.pop("pid") != c.pop("pid")
    assert w == c
  assert [r["runs"] for _, r in warm] == [1, 1, 1, 1]  # no state carried
  assert len({r["pid"] for _, r in _run_tasks(tmp_path, True)}) == 4
  assert warm[0][1]["argv"] == ["--x", "1"]
  assert warm[0][1]["env"] == "a" and warm[1][1]["env"] == "b"
  assert warm[0][1]["cwd"] == warm[0][1]["path0"] == str(tmp_path / "cwd")
  assert warm[0][1]["name"] == "__main__" and warm[0][1]["stdin"] == ""
