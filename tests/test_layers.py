"""The packages depend one way: components/storage.py (a leaf) <- serving/
<- components/* <- pipeline/ (README, "Where things live"). An import
against that direction fails here, with the file and the import."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project_imports(path):
  """The project modules `path` imports (anywhere in it, functions too)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    else:
      continue
    for name in names:
      if name.split(".")[0] in ("components", "serving", "pipeline"):
        yield name


def _files(package):
  for root, _, files in os.walk(os.path.join(REPO, package)):
    for name in files:
      if name.endswith(".py"):
        yield os.path.join(root, name)


def _violations(package, allowed):
  return [(os.path.relpath(path, REPO), name)
          for path in _files(package) for name in _project_imports(path)
          if not allowed(name)]


def test_storage_is_a_leaf():
  assert list(_project_imports(
      os.path.join(REPO, "components", "storage.py"))) == []


def test_serving_imports_nothing_of_components_but_storage():
  assert _violations("serving", lambda name: name.startswith("serving") or
                     name in ("components", "components.storage")) == []


def test_components_never_import_the_pipeline():
  assert _violations("components",
                     lambda name: not name.startswith("pipeline")) == []
