"""Fingerprints of code and files, for the cache keys of the components.

TFX reuses a component's earlier output when its inputs and execution
properties are unchanged; it does not look at code. Each of our components
therefore gets the fingerprint of the code it runs (and the schema import
that of the schema file) as an execution property, so an edit of
`components/trainer/models.py`, say, retrains instead of reusing a model
trained by the old code.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from typing import List

import tensorflow as tf


# The directory holding the `components` package: paths are hashed relative
# to it, so a checkout, an installed copy and the image agree.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _source_files(module: str) -> List[str]:
  spec = importlib.util.find_spec(module)
  if spec is None or not spec.origin:
    raise ValueError(f"no module {module!r} to fingerprint")
  if spec.submodule_search_locations:  # a package: every .py below it
    return sorted(
        os.path.join(root, name)
        for location in spec.submodule_search_locations
        for root, _, names in os.walk(location) for name in names
        if name.endswith(".py"))
  return [spec.origin]


def code_fingerprint(*modules: str) -> str:
  """16 hex digits of sha256 over the Python sources of `modules` (dotted
  names; a package means every module below it)."""
  digest = hashlib.sha256()
  for module in modules:
    for path in _source_files(module):
      digest.update(os.path.relpath(path, _ROOT).encode() + b"\0")
      with open(path, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()[:16]


def file_fingerprint(path: str) -> str:
  """16 hex digits of sha256 over the bytes of `path` (local or remote)."""
  with tf.io.gfile.GFile(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]
