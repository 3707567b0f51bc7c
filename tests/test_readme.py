"""The README's two commands stay true."""

import os
import re
import subprocess
import sys

from conftest import REPO

INSTALL = 'python3 -m venv .venv && .venv/bin/pip install . && '


def bash_blocks(section: str) -> list[str]:
  text = (REPO / 'README.md').read_text()
  body = text.split(f'## {section}\n', 1)[1].split('\n## ', 1)[0]
  return re.findall(r'```bash\n(.*?)```', body, re.S)


def test_ci_runs_the_readme_test_command():
  (command,) = bash_blocks('Tests')
  ci = (REPO / '.ci' / 'run').read_text()
  assert command.strip() in ci.splitlines()


def test_quick_start_builds_and_prints_the_sample(tmp_path):
  (command,) = bash_blocks('Quick start (bundled sample data)')
  command = command.strip()
  assert command.startswith(INSTALL)
  # The install step is what CI already did; run the rest with this
  # environment's tools, into a temporary data_dir.
  rest = command[len(INSTALL):].replace('.venv/bin/', os.path.dirname(sys.executable) + '/')
  rest = rest.replace('/tmp/imagenet_resized_demo', str(tmp_path / 'demo'))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('PYTHONPATH', None)
  proc = subprocess.run(['bash', '-c', rest], cwd=REPO, env=env, capture_output=True,
                        text=True)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # tfds build logs its progress first; the last four lines are the printout.
  lines = proc.stdout.strip().splitlines()[-4:]
  assert lines[0] == "{'train': 18, 'validation': 5}"
  from imagenet_resized import labels  # pylint: disable=g-import-not-at-top
  for line in lines[1:]:
    m = re.fullmatch(r'\(32, 32, 3\) (\d+) (n\d{8}) (.+)', line)
    assert m, line
    label = int(m.group(1))
    assert m.group(2) == labels.WNIDS[label] and m.group(3) == labels.NAMES[label]
