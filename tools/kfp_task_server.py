"""Starts the emulator's task processes from one interpreter that has already
imported TensorFlow and TFX: `python tools/kfp_task_server.py MODULE...`.

A task of a compiled spec is `python -m <module> <args>`; each pays about 5 s
of imports (TensorFlow, TFX's v2 executor, Beam) before its first line of
work. This server imports MODULE... once, in the environment and working
directory a task would have, then forks one child per task. The child is a
process of its own, as a container's is: it gets the task's argv, environment
and working directory, its stdout and stderr go to the task's log, and it runs
`<module>` as `__main__` (what `python -m` does). The parent's state is what a
fresh `python -m` would have after those imports, nothing more: the server
runs no task code itself and serves tasks one at a time.

Protocol, one JSON object per line: a request on stdin
`{"module", "args", "env", "cwd", "log"}`, the reply on stdout
`{"returncode"}` (negative: killed by that signal), as `subprocess.run`
reports it. Tasks whose environment differs from the server's need a server
of their own (`kfp_emulator` keys servers by environment), because modules
may read the environment when imported.
"""
import contextlib
import importlib
import json
import os
import runpy
import sys


def _run_child(request) -> None:
  """In the forked child: become the task, run it, never return."""
  code = 1
  try:
    log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.close(null_fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]
    sys.argv = [request["module"]] + list(request["args"])
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    code = 0
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except BaseException:  # pylint: disable=broad-except
    import traceback  # pylint: disable=g-import-not-at-top
    traceback.print_exc()
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(OSError, ValueError):
      stream.flush()
  os._exit(code)  # pylint: disable=protected-access


def main() -> None:
  sys.path[0] = os.getcwd()  # as `python -m` in this directory has it
  for module in sys.argv[1:]:
    importlib.import_module(module)
  requests, replies = sys.stdin, sys.stdout
  replies.write(json.dumps({"ready": True}) + "\n")
  replies.flush()
  for line in requests:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
      _run_child(request)
    _, status = os.waitpid(pid, 0)
    returncode = (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                  else os.WEXITSTATUS(status))
    replies.write(json.dumps({"returncode": returncode}) + "\n")
    replies.flush()


if __name__ == "__main__":
  main()
