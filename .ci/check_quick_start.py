"""Checks what the README's quick start printed (its stdout, on stdin).

The quick start builds imagenet_resized/32x32 from dummy_data/ and prints the
split sizes, then three `(32, 32, 3) label wnid name` lines. The label, WordNet
ID and name are checked against the repository's own labels.txt and
imagenet_resized/class_names.tsv, read here without the package.
Standard library only.
"""

import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
SPLITS_LINE = "{'train': 18, 'validation': 5}"
EXAMPLE_LINE = re.compile(r'\(32, 32, 3\) (\d+) (n\d{8}) (.+)')


def problems(stdout: str) -> list[str]:
  wnids = REPO.joinpath('labels.txt').read_text().split()
  names = {}
  for line in REPO.joinpath('imagenet_resized', 'class_names.tsv').read_text().splitlines():
    if line and not line.startswith('#'):
      wnid, lemmas = line.split('\t')
      names[wnid] = lemmas.split(', ')[0]
  lines = stdout.strip().splitlines()[-4:]
  found = []
  if len(lines) != 4 or lines[0] != SPLITS_LINE:
    return [f'expected {SPLITS_LINE} then three example lines; got {lines}']
  for line in lines[1:]:
    m = EXAMPLE_LINE.fullmatch(line)
    if not m:
      found.append(f'not an example line: {line!r}')
      continue
    label, wnid, name = int(m.group(1)), m.group(2), m.group(3)
    if not (0 <= label < 1000 and wnids[label] == wnid and names[wnid] == name):
      found.append(f'{line!r}: label {label} is {wnids[label]} ({names[wnids[label]]})')
  return found


if __name__ == '__main__':
  wrong = problems(sys.stdin.read())
  for message in wrong:
    print(f'quick start: {message}', file=sys.stderr)
  if wrong:
    sys.exit(1)
  print('quick start printed what the README says')
