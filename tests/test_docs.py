"""Every command in README.md and docs/ is tested, and the ones marked `run`
are run here exactly as printed.

Each ```bash or ```python block is preceded by a marker that says how it is
tested:
  <!-- test: run -->                 run here, verbatim, in a fresh HOME that
                                     holds fake sources (~/imagenet_downsampled:
                                     the authors' 32x32 npz zips; ~/imagenet16:
                                     16x16 ones fit for ImageNet16-120;
                                     ~/imagenet: tiny ILSVRC2012 tarballs), in
                                     page order;
  <!-- test: .ci/run -->             the README's quick start and test command,
                                     which CI takes from the README and runs
                                     (or a command they contain, e.g. the
                                     install);
  <!-- test: tests/FILE::TEST -->    a block that cannot run here (it needs the
                                     network, torch, grain); the named test
                                     covers what it relies on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import REPO
from imagenet_resized.tools import fake
import fake_helpers
from imagenet_resized import labels

PAGES = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
_MARKER = re.compile(r'<!-- test: (.+?) -->')
_FENCE = re.compile(r'^```(\w*)\s*$')


@dataclasses.dataclass(frozen=True)
class Block:
  page: pathlib.Path
  line: int
  language: str
  code: str
  marker: str | None

  def __str__(self) -> str:
    return f'{self.page.relative_to(REPO)}:{self.line}'


def blocks(page: pathlib.Path) -> list[Block]:
  """The fenced code blocks of a page, each with the marker before it."""
  found, marker, lines = [], None, page.read_text(encoding='utf-8').splitlines()
  i = 0
  while i < len(lines):
    m = _MARKER.search(lines[i])
    if m:
      marker = m.group(1).strip()
    fence = _FENCE.match(lines[i])
    if fence:
      end = lines.index('```', i + 1)
      found.append(Block(page, i + 1, fence.group(1), '\n'.join(lines[i + 1 : end]), marker))
      marker, i = None, end
    i += 1
  return found


def commands(page: pathlib.Path) -> list[Block]:
  return [b for b in blocks(page) if b.language in ('bash', 'python')]


def _load(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


readme_command = _load(REPO / '.ci' / 'readme_command.py')
check_quick_start = _load(REPO / '.ci' / 'check_quick_start.py')


def test_every_command_says_how_it_is_tested():
  for page in PAGES:
    for block in commands(page):
      marker = block.marker
      assert marker is not None, f'{block}: no <!-- test: ... --> marker'
      if marker.startswith('tests/'):
        path, _, name = marker.partition('::')
        assert re.search(rf'^def {name}\(', (REPO / path).read_text(), re.M), (
            f'{block}: {marker} does not exist')
      else:
        assert marker in ('run', '.ci/run'), f'{block}: unknown marker {marker!r}'


def test_ci_runs_the_readme_commands_it_marks():
  """The blocks marked .ci/run are exactly the ones .ci/run takes from the README."""
  ci = (REPO / '.ci' / 'run').read_text()
  text = (REPO / 'README.md').read_text()
  marked = [b.code.strip() for b in commands(REPO / 'README.md') if b.marker == '.ci/run']
  taken = [readme_command.section_command(s, text) for s in ('Quick start', 'Tests')]
  assert all(command in marked for command in taken)
  for code in marked:
    uncommented = code.split('#')[0].strip()
    assert any(uncommented in command for command in taken), code
  for section in ('Quick start', 'Tests'):
    assert f"python3 .ci/readme_command.py '{section}')" in ci
  assert 'bash -c "$quick_start"' in ci and 'bash -c "$tests"' in ci
  assert taken[0].startswith('python3 -m venv .venv && .venv/bin/pip install . && ')
  # What the README says the quick start prints is what CI checks.
  assert f'It prints `{check_quick_start.SPLITS_LINE}`' in text


def test_quick_start_check_tells_right_from_wrong():
  def line(label, wnid=None, name=None):
    return (f'(32, 32, 3) {label} {wnid or labels.WNIDS[label]}'
            f' {name or labels.NAMES[label]}')
  good = '\n'.join(['Building...', check_quick_start.SPLITS_LINE,
                    line(999), line(0), line(278)])
  assert check_quick_start.problems(good) == []
  assert check_quick_start.problems(good.replace('18', '17'))
  assert check_quick_start.problems(good.replace(line(0), line(0, wnid='n02100735')))
  assert check_quick_start.problems(good.replace(line(278), line(278, name='tabby cat x')))
  assert check_quick_start.problems(check_quick_start.SPLITS_LINE)


@pytest.fixture
def home(tmp_path):
  """A user's home holding the sources the docs' commands use."""
  fake.write_sources(str(tmp_path / 'imagenet_downsampled'), 32, train_batches=2,
                     examples_per_batch=4, val_examples=3)
  fake_helpers.write_imagenet16_120_sources(str(tmp_path / 'imagenet16'))
  from test_ilsvrc import TinyImagenet
  TinyImagenet().write_tarballs(str(tmp_path / 'imagenet'))
  return tmp_path


def run_block(block: Block, home: pathlib.Path) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'TFDS_DATA_DIR')}
  env.update(HOME=str(home), TF_CPP_MIN_LOG_LEVEL='3',
             PATH=os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', ''))
  if block.language == 'bash':
    args = ['bash', '-e', '-o', 'pipefail', '-c', block.code]
  else:
    args = [sys.executable, '-c', block.code]
  return subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    'page', [p for p in PAGES if any(b.marker == 'run' for b in commands(p))],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_commands_run_as_printed(page, home):
  for block in commands(page):
    if block.marker == 'run':
      result = run_block(block, home)
      assert result.returncode == 0, f'{block}:\n{result.stderr[-3000:]}'
  # A `~` that nobody expanded would have made a folder named `~` here.
  assert not (home / '~').exists()
