"""One run per OUTPUT_DIR at a time: `hold_run_lock`."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from typing import Iterator, Optional

LOCK_FILE = ".run.lock"


# One run per output directory at a time: an advisory lock file.
# `fcntl.flock` locks belong to the open file, so the kernel releases them
# when the holding process dies, however it dies (SIGKILL included): a lock
# left by a killed run never blocks the next one. The file's text (pid, host,
# start) only describes the holder, for the refusal message and to report
# that a previous run ended without cleaning up.


class AlreadyRunningError(RuntimeError):
  """Another run holds the lock of this output directory."""


def _describe(text: str) -> str:
  try:
    holder = json.loads(text)
    return (f"pid {holder['pid']} on {holder['host']}, started "
            f"{holder['started']}")
  except (ValueError, KeyError, TypeError):
    return "an unknown process"


@contextlib.contextmanager
def hold_run_lock(output_dir: str, log=print) -> Iterator[Optional[str]]:
  """Holds the lock of `output_dir` for the duration of the block.

  Yields the description of a stale holder that was cleared (or None).
  Raises AlreadyRunningError at once when a live run holds it.
  """
  os.makedirs(output_dir, exist_ok=True)
  path = os.path.join(output_dir, LOCK_FILE)
  handle = open(path, "a+")  # pylint: disable=consider-using-with
  try:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      raise AlreadyRunningError(
          f"{output_dir} is in use by another run ({_describe(handle.read())});"
          " wait for it to finish or set another OUTPUT_DIR") from None
    handle.seek(0)
    previous = handle.read().strip()
    stale = _describe(previous) if previous else None
    if stale:
      log(f"note: cleared a stale lock of {stale}, which ended without "
          "releasing it; its finished steps are reused from the cache")
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
    handle.flush()
    _HELD.append(handle)
    try:
      yield stale
    finally:
      _HELD.remove(handle)
      _release(handle)
  finally:
    handle.close()


_HELD = []  # the lock files this process holds now


def _release(handle) -> None:
  handle.seek(0)
  handle.truncate()  # an empty file: released cleanly
  handle.flush()
  fcntl.flock(handle, fcntl.LOCK_UN)


def release_held_locks() -> None:
  """Releases every lock this process holds, cleanly (for an exit that
  cannot unwind, see `exits.interrupt`)."""
  for handle in list(_HELD):
    try:
      _release(handle)
    except (OSError, ValueError):
      pass
