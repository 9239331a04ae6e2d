"""The emulator's warm start (`tools/kfp_task_server.py`) gives each task
what a fresh `python -m` in a container gives it: its own process, argv,
environment (with what its imports set), working directory, log and exit
status, and no state of another task."""
import json
import os
import sys

from tools import kfp_emulator

# Imported by the warm server before any task; prints, as TensorFlow does.
PROBE_STATE = """
import os
print("probe_state imported", flush=True)
os.environ["SET_ON_IMPORT"] = "1"
runs = 0
"""
PROBE = """
import atexit, json, os, signal, sys, threading, time
if __name__ == "__main__":  # imported warm first: nothing runs then
  import probe_state
  probe_state.runs += 1
  print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                    "path0": sys.path[0], "env": os.environ.get("PROBE"),
                    "set_on_import": os.environ.get("SET_ON_IMPORT"),
                    "runs": probe_state.runs, "name": __name__,
                    "stdin": sys.stdin.read(), "pid": os.getpid()}))
  sys.stdout.flush()
  atexit.register(lambda: print("atexit ran"))
  threading.Thread(target=lambda: (time.sleep(0.2), print("thread ended")),
                   daemon=False).start()
  if sys.argv[1:] == ["kill"]:
    os.kill(os.getpid(), signal.SIGKILL)
  if sys.argv[1:] == ["message"]:
    sys.exit("exit with a message")
  sys.exit(3 if sys.argv[1:] == ["exit"] else 0)
"""


def _run_tasks(tmp_path, warm):
  code = tmp_path / "code"
  code.mkdir(exist_ok=True)
  (code / "probes").mkdir(exist_ok=True)
  (code / "probes" / "__init__.py").write_text("")
  (code / "probes" / "task.py").write_text(PROBE)
  (code / "probe_state.py").write_text(PROBE_STATE)
  cwd = tmp_path / "cwd"
  cwd.mkdir(exist_ok=True)
  # The task module itself is imported warm too: it must run fresh.
  starter = kfp_emulator.TaskStarter(warm=warm,
                                     imports=("probe_state", "probes.task"))
  base = {"PYTHONPATH": str(code), "PATH": os.environ["PATH"]}
  # One environment but the second's: tasks share a server where they can.
  tasks = [({"PROBE": "a"}, ["--x", "1"]), ({"PROBE": "b"}, ["{}"]),
           ({"PROBE": "a"}, ["exit"]), ({"PROBE": "a"}, ["message"]),
           ({"PROBE": "a"}, ["kill"])]
  results = []
  try:
    for i, (env, args) in enumerate(tasks):
      log = tmp_path / f"{warm}-{i}.log"
      status = starter.run([sys.executable, "-m", "probes.task", *args],
                           {**base, **env}, str(cwd), str(log))
      lines = [l for l in log.read_text().splitlines()
               if not l.startswith("probe_state imported")]
      seen = json.loads(lines[0])
      results.append((status, seen, sorted(lines[1:])))
  finally:
    starter.close()
  return results


def test_a_warm_task_is_what_a_fresh_python_m_is(tmp_path):
  warm, cold = _run_tasks(tmp_path, True), _run_tasks(tmp_path, False)
  assert [status for status, _, _ in warm] == [
      status for status, _, _ in cold] == [0, 0, 3, 1, -9]
  for (_, w, w_rest), (_, c, c_rest) in zip(warm, cold):
    assert w.pop("pid") != c.pop("pid")
    assert w == c
    assert w_rest == c_rest
  assert [seen["runs"] for _, seen, _ in warm] == [1] * 5  # no state carried
  assert len({seen["pid"] for _, seen, _ in _run_tasks(tmp_path, True)}) == 5
  _, first, after = warm[0]
  assert first["argv"] == ["--x", "1"] and warm[1][1]["env"] == "b"
  assert first["env"] == "a" and first["set_on_import"] == "1"
  assert first["cwd"] == first["path0"] == str(tmp_path / "cwd")
  assert first["name"] == "__main__" and first["stdin"] == ""
  assert after == ["atexit ran", "thread ended"]  # as an interpreter's exit
  assert "exit with a message" in warm[3][2]
