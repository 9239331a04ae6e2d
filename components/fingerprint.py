"""Fingerprints of code and files, for the cache keys of the components.

TFX reuses a component's earlier output when its inputs and execution
properties are unchanged; it does not look at code. Each of our components
therefore gets the fingerprint of the code it runs as an execution property
(the Trainer and the Tuner in their `custom_config`, the schema import that
of the schema file), so an edit of `components/trainer/models.py`, say,
retrains instead of reusing a model trained by the old code.

The code a component runs is found, not listed: `code_fingerprint` starts
from the module that runs (an executor, `run_fn`'s or `tuner_fn`'s module)
and follows every `import` of this project's packages in its source,
transitively, including imports inside functions and the `__init__.py` of
each package on the way, as Python would execute them.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
from typing import FrozenSet, Iterable, List, Optional, Tuple

import tensorflow as tf

# The directory holding the `components` package: paths are hashed relative
# to it, so a checkout, an installed copy and the image agree.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This project's top-level packages and modules: imports of anything else
# (TensorFlow, TFX, ...) are the installed stack's, not followed.
PROJECT_PACKAGES = ("components", "pipeline", "serving", "mnist_tfx")


def _module_file(module: str) -> Optional[str]:
  """The source file of project module `module` (dotted), or None if it is
  not a module of this project."""
  if module.split(".")[0] not in PROJECT_PACKAGES:
    return None
  base = os.path.join(ROOT, *module.split("."))
  for path in (base + ".py", os.path.join(base, "__init__.py")):
    if os.path.isfile(path):
      return path
  return None


def _with_parents(module: str) -> List[str]:
  """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing it runs each `__init__`."""
  parts = module.split(".")
  return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imported(module: str, path: str) -> Tuple[str, ...]:
  """Module names in the import statements of `path` (anywhere in it,
  functions included), parsed once per version of the file."""
  stat = os.stat(path)
  return _parse_imports(module, path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _parse_imports(module: str, path: str, mtime_ns: int,
                   size: int) -> Tuple[str, ...]:
  del mtime_ns, size  # the cache key: another version of the file
  return tuple(_import_names(module, path))


def _import_names(module: str, path: str) -> Iterable[str]:
  with open(path, "rb") as f:
    tree = ast.parse(f.read(), filename=path)
  package = (module if path.endswith("__init__.py")
             else module.rpartition(".")[0])
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: from . import x, from ..y import z
        anchor = package.split(".")
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
      yield base
      for alias in node.names:  # `from package import module`
        yield f"{base}.{alias.name}"


def project_modules(*entry_modules: str) -> FrozenSet[str]:
  """Every project module that importing `entry_modules` can run: the
  modules themselves, what they import from this project, transitively, and
  the packages on the way."""
  found = set()
  pending = [m for entry in entry_modules for m in _with_parents(entry)]
  while pending:
    module = pending.pop()
    if module in found:
      continue
    path = _module_file(module)
    if path is None:
      continue
    found.add(module)
    for name in _imported(module, path):
      pending.extend(_with_parents(name))
  missing = [m for m in entry_modules if m not in found]
  if missing:
    raise ValueError(f"no module {missing[0]!r} in this project to "
                     "fingerprint")
  return frozenset(found)


def code_fingerprint(*entry_modules: str) -> str:
  """16 hex digits of sha256 over the sources of `project_modules(...)`:
  the code that runs when `entry_modules` are imported and called."""
  return _digest(project_modules(*entry_modules))


def project_fingerprint() -> str:
  """16 hex digits of sha256 over every source file of this project."""
  modules = set()
  for package in PROJECT_PACKAGES:
    top = os.path.join(ROOT, package)
    if os.path.isfile(top + ".py"):
      modules.add(package)
    for root, _, names in os.walk(top):
      for name in names:
        if name.endswith(".py"):
          relative = os.path.relpath(os.path.join(root, name), ROOT)
          modules.add(relative[:-3].replace(os.sep, ".").removesuffix(
              ".__init__"))
  return _digest(sorted(modules))


def _digest(modules: Iterable[str]) -> str:
  digest = hashlib.sha256()
  for path in sorted(_module_file(m) for m in modules):
    digest.update(os.path.relpath(path, ROOT).encode() + b"\0")
    with open(path, "rb") as f:
      digest.update(f.read())
  return digest.hexdigest()[:16]


def file_fingerprint(path: str) -> str:
  """16 hex digits of sha256 over the bytes of `path` (local or remote)."""
  with tf.io.gfile.GFile(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]
