#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter: $PYTHON, then python3.10 on
# PATH, then pyenv's 3.10 (installed but not on PATH on our machines).
set -u
is310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }
for candidate in "${PYTHON:-}" "$(command -v python3.10 2>/dev/null)"; do
  if [ -n "$candidate" ] && is310 "$candidate"; then echo "$candidate"; exit 0; fi
done
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for candidate in $(ls -d "$pyenv_root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r); do
  if is310 "$candidate"; then echo "$candidate"; exit 0; fi
done
cat >&2 <<'MSG'
error: Python 3.10 not found (TFX 1.16 supports Python 3.9-3.10; this project pins 3.10).
Looked at: $PYTHON, python3.10 on PATH, $PYENV_ROOT/versions/3.10*.
Get one with:   pyenv install 3.10      (or: apt-get install python3.10 / uv python install 3.10)
or point to it: make install PYTHON=/path/to/python3.10
MSG
exit 1
