"""Starts the emulator's task processes from one interpreter that has already
imported TensorFlow and TFX: `python tools/kfp_task_server.py MODULE...`.

A task of a compiled spec is `python -m <module> <args>`; each pays about 5 s
of imports (TensorFlow, TFX's v2 executor, Beam) before its first line of
work. This server imports MODULE... once, in the environment and working
directory a task would have, then forks one child per task. The child is a
process of its own, as a container's is: it gets the task's argv, its stdin
is /dev/null, its stdout and stderr go to the task's log, and it runs
`<module>` as `__main__` (what `python -m` does), then waits for its
non-daemon threads and runs its `atexit` functions, as an interpreter's exit
does. The parent's state is what a fresh `python -m` would have after those
imports (environment variables they set included), nothing more: the server
runs no task code itself and serves tasks one at a time. Not emulated: the
interpreter's teardown after that (module finalizers, C++ destructors).

Protocol, one JSON object per line: the server says `{"ready": true}` once
its imports are done; then a request on stdin `{"module", "args", "log"}`,
the reply `{"returncode"}` (negative: killed by that signal), as
`subprocess.run` reports it. Replies go to the server's original stdout;
whatever the imports print goes to its stderr. The environment and working
directory are the server's: tasks that need others need a server of their
own (`kfp_emulator.TaskStarter` keys servers by both), because modules may
read the environment when imported.
"""
import atexit
import contextlib
import importlib
import json
import os
import runpy
import sys
import threading


def _run_child(request, replies) -> int:
  """In the forked child: become the task and run it; its exit status."""
  replies.close()
  log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                   0o644)
  null_fd = os.open(os.devnull, os.O_RDONLY)
  os.dup2(null_fd, 0)
  os.dup2(log_fd, 1)
  os.dup2(log_fd, 2)
  os.close(log_fd)
  os.close(null_fd)
  sys.argv = [request["module"]] + list(request["args"])
  sys.modules.pop(request["module"], None)  # run fresh, as `python -m` does
  code = 0
  try:
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
  except SystemExit as e:
    if e.code is None or isinstance(e.code, int):
      code = e.code or 0
    else:  # `sys.exit("message")`: printed, exit 1
      print(e.code, file=sys.stderr)
      code = 1
  except BaseException:  # pylint: disable=broad-except
    import traceback  # pylint: disable=g-import-not-at-top
    traceback.print_exc()
    code = 1
  for thread in threading.enumerate():  # as the interpreter's exit does
    if thread is not threading.main_thread() and not thread.daemon:
      thread.join()
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  return code


def main() -> None:
  sys.path[0] = os.getcwd()  # as `python -m` in this directory has it
  replies = os.fdopen(os.dup(1), "w", buffering=1)
  os.dup2(2, 1)  # what the imports print stays out of the replies
  for module in sys.argv[1:]:
    importlib.import_module(module)
  replies.write(json.dumps({"ready": True}) + "\n")
  for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
      code = 1
      try:
        code = _run_child(request, replies)
      finally:  # never back into the server's loop or its exit
        for stream in (sys.stdout, sys.stderr):
          with contextlib.suppress(OSError, ValueError):
            stream.flush()
        os._exit(code)  # pylint: disable=protected-access
    _, status = os.waitpid(pid, 0)
    returncode = (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                  else os.WEXITSTATUS(status))
    replies.write(json.dumps({"returncode": returncode}) + "\n")


if __name__ == "__main__":
  main()
