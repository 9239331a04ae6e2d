"""How a local run ends: one line and an exit status (0 finished, pushed or
not; 1 any error; 130 Ctrl-C; 143 SIGTERM), and outputs checked writable
before anything starts."""
from __future__ import annotations

import os
import re
import sys
import threading

from pipeline import run_lock

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
# Ctrl-C unwinds (KeyboardInterrupt: the lock released, "interrupted", 130);
# if something holds the main thread past this many seconds (Beam can wait
# for a worker thread still training), the process ends with 130 anyway.
INTERRUPT_GRACE_SECONDS = 15


def interrupt(signum, frame):
  """SIGINT handler: Python's KeyboardInterrupt, with a deadline."""
  del signum, frame
  deadline = threading.Timer(INTERRUPT_GRACE_SECONDS, _interrupted_now)
  deadline.daemon = True
  deadline.start()
  raise KeyboardInterrupt


def _interrupted_now() -> None:
  run_lock.release_held_locks()
  print("interrupted", file=sys.stderr, flush=True)
  os._exit(EXIT_INTERRUPTED)  # pylint: disable=protected-access


def check_writable(directory: str, setting: str) -> None:
  """Fails at once, in one line, if `directory` could not be written (it,
  or its nearest existing parent, is read-only or not a directory)."""
  existing = os.path.abspath(directory)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  problem = None
  if not os.path.isdir(existing):
    problem = f"{existing} is not a directory"
  elif not os.access(existing, os.W_OK):
    problem = (f"no write permission on {existing}" if not _read_only_mount(
        existing) else f"{existing} is on a read-only filesystem")
  if problem:
    raise PermissionError(f"{setting}={directory} is not writable: {problem}")


def _read_only_mount(path: str) -> bool:
  return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def exit_on_sigterm(signum, frame):
  del signum, frame
  print("terminated (SIGTERM): the next run reuses every finished component "
        "and resumes training from its last finished epoch", file=sys.stderr,
        flush=True)
  os._exit(EXIT_TERMINATED)  # pylint: disable=protected-access


def root_cause(error: BaseException) -> BaseException:
  """The innermost of our own errors in a chain wrapped by Beam/TFX."""
  seen = []
  while error is not None and error not in seen:
    seen.append(error)
    error = error.__cause__ or (
        None if error.__suppress_context__ else error.__context__)
  for candidate in reversed(seen):
    if type(candidate).__module__.startswith(("components.", "pipeline.",
                                              "serving.")):
      return candidate
  return seen[-1]


def one_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  line = re.sub(r" \[while running '[^']*'\]$", "", text[0] if text else "")
  return f"{type(error).__name__}: {line}"  # without Beam's step suffix
