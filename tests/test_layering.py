"""The rules between the package's wings (docs/architecture.md), checked.

Each wing is a folder of imagenet_resized with a job. What a wing may import
is written once, in docs/architecture.md's table of wings, which this test
reads; each wing's `__init__` docstring says the same in its "May import"
line (checked to name exactly the same), and:

* statically, every import statement of every module (function-level ones
  included) names only the package's own modules and the outside packages
  its wing may use; no wing imports the builder, the command line, the public
  `arrays` module or the package's `__init__`;
* at run time, importing every module of `readers` and `authors` the way a
  worker process does (the package's folder without its `__init__`, which
  registers the TFDS builder) loads no `tensorflow*` module.
"""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / 'imagenet_resized'
STDLIB = frozenset(sys.stdlib_module_names) | {'__future__'}

# The package's own leaves, which every wing may import.
LEAVES = {'common', 'resources'}
# The top of the package, which no wing may import: the TFDS builder, its
# configs, the command line, the public arrays and labels modules and the
# package's __init__ (which imports the builder).
TOP = {
    'imagenet_resized_dataset_builder', 'configs', '__main__', 'arrays',
    'labels', '',
}


def _names(text: str) -> set[str]:
  """The backticked names of a rule (`numpy`, `readers/`), the leaves out."""
  return {n.rstrip('/') for n in re.findall(r'`([\w.]+/?)`', text)} - LEAVES


def _rules_in_docs() -> dict[str, set[str]]:
  """wing -> what it may import, from docs/architecture.md's table."""
  text = (REPO / 'docs' / 'architecture.md').read_text(encoding='utf-8')
  rules = {}
  for match in re.finditer(r'^\| `(\w+)/` \|([^\n]*)$', text, re.M):
    cells = [c.strip() for c in match.group(2).strip('|').split('|')]
    rules[match.group(1)] = _names(cells[-1])
  return rules


RULES = _rules_in_docs()


def _wings() -> list[str]:
  return sorted(
      p.name for p in PACKAGE.iterdir()
      if p.is_dir() and (p / '__init__.py').exists()
  )


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
  """(line, absolute dotted name) of every import in a module."""
  tree = ast.parse(path.read_text(encoding='utf-8'))
  package_parts = ['imagenet_resized', path.parent.name]
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [(node.lineno, a.name) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = '.'.join(package_parts[: len(package_parts) - node.level + 1])
        module = f'{base}.{node.module}' if node.module else base
      else:
        module = node.module
      if module == 'imagenet_resized' or (
          module.startswith('imagenet_resized.') and module.count('.') == 1
          and module.split('.')[1] in _wings()
      ):
        out += [(node.lineno, f'{module}.{a.name}') for a in node.names]
      else:
        out.append((node.lineno, module))
  return out


def _violations(wing: str) -> list[str]:
  may = RULES[wing]
  may_wings = {n for n in may if n in _wings()}
  may_outside = may - may_wings
  found = []
  for path in sorted((PACKAGE / wing).glob('*.py')):
    for line, name in _imports(path):
      parts = name.split('.')
      where = f'{path.relative_to(REPO)}:{line} imports {name}'
      if parts[0] == 'imagenet_resized':
        inner = parts[1] if len(parts) > 1 else ''
        if inner in LEAVES or inner in {wing} | may_wings:
          continue
        found.append(where + (
            ' (the top of the package)' if inner in TOP else
            f' (wing {inner!r} is not among {sorted(may_wings) or "none"})'
        ))
      elif parts[0] not in STDLIB and parts[0] not in may_outside:
        found.append(f'{where} (not among {sorted(may_outside)})')
  return found


def test_every_wing_has_rules_and_a_docstring_saying_them():
  assert set(_wings()) == set(RULES)
  for wing in _wings():
    init = PACKAGE / wing / '__init__.py'
    tree = ast.parse(init.read_text(encoding='utf-8'))
    # Wing __init__s import nothing, so that a worker importing one module of
    # a wing loads only that module.
    assert [type(n) for n in tree.body] == [ast.Expr], init
    doc = ast.get_docstring(tree)
    said = doc[doc.index('May import'):].split('.')[0]
    assert _names(said) == RULES[wing], (wing, said)


@pytest.mark.parametrize('wing', sorted(RULES))
def test_wing_imports_only_what_its_rules_allow(wing):
  assert _violations(wing) == []


_WORKER_STYLE_IMPORT = """
import importlib, importlib.util, json, pkgutil, sys
folder, wings = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location(
    'imagenet_resized', folder + '/__init__.py',
    submodule_search_locations=[folder])
sys.modules['imagenet_resized'] = importlib.util.module_from_spec(spec)
for wing in wings:
  for info in pkgutil.iter_modules([folder + '/' + wing]):
    importlib.import_module(f'imagenet_resized.{wing}.{info.name}')
print(json.dumps(sorted(m for m in sys.modules if m.startswith('tensorflow'))))
"""


@pytest.mark.slow  # It starts a process.
def test_readers_and_authors_load_no_tensorflow():
  import imagenet_resized
  folder = pathlib.Path(imagenet_resized.__file__).parent
  proc = subprocess.run(
      [sys.executable, '-c', _WORKER_STYLE_IMPORT, str(folder),
       '["readers", "authors"]'],
      capture_output=True, text=True, check=False,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == '[]'


def test_a_broken_rule_is_caught(tmp_path, monkeypatch):
  """The check itself: a reader that imports the builder is a violation."""
  fake = tmp_path / 'imagenet_resized'
  (fake / 'readers').mkdir(parents=True)
  (fake / 'readers' / '__init__.py').write_text('"""May import nothing."""\n')
  (fake / 'readers' / 'bad.py').write_text(
      'import tensorflow\n'
      'from imagenet_resized import imagenet_resized_dataset_builder\n'
  )
  monkeypatch.setattr(sys.modules[__name__], 'PACKAGE', fake)
  monkeypatch.setattr(sys.modules[__name__], 'REPO', tmp_path)
  found = _violations('readers')
  assert len(found) == 2, found
  assert 'the top of the package' in found[1]


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def test_no_module_imports_itself_through_others():
  """The package's modules import one another without a cycle (counting
  module-level imports, the ones that run when a module loads)."""
  modules = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
  graph = {}
  for name, path in modules.items():
    tree = ast.parse(path.read_text(encoding='utf-8'))
    targets = set()
    for node in tree.body:
      if isinstance(node, ast.ImportFrom) and node.module and (
          node.module.startswith('imagenet_resized')
      ):
        for a in node.names:
          full = f'{node.module}.{a.name}'
          targets.add(full if full in modules else node.module)
      elif isinstance(node, ast.Import):
        targets |= {a.name for a in node.names if a.name in modules}
    graph[name] = {t for t in targets if t in modules and t != name}
  # The package's __init__ imports the top; wings never import it (above).
  graph.pop('imagenet_resized', None)
  for deps in graph.values():
    deps.discard('imagenet_resized')
  state, cycle = {}, []

  def visit(node, trail):
    state[node] = 'open'
    for dep in sorted(graph.get(node, ())):
      if state.get(dep) == 'open':
        cycle.append(trail + [node, dep])
      elif dep not in state:
        visit(dep, trail + [node])
    state[node] = 'done'

  for node in sorted(graph):
    if node not in state:
      visit(node, [])
  assert cycle == []
