"""Prints the one ```bash block of a README.md section, as printed there.

Usage: python3 .ci/readme_command.py 'Quick start'   (a prefix of the heading)
CI runs what this prints, so the README's commands are the ones tested.
Standard library only: it runs before anything is installed.
"""

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parent.parent / 'README.md'


def section_command(heading_prefix: str, text: str) -> str:
  """The single bash block under the `## <heading_prefix>...` heading."""
  sections = re.split(r'^## ', text, flags=re.M)[1:]
  matching = [s for s in sections if s.startswith(heading_prefix)]
  if len(matching) != 1:
    raise SystemExit(f'README.md: {len(matching)} sections start with {heading_prefix!r}; expected 1')
  blocks = re.findall(r'^```bash\n(.*?)^```', matching[0], flags=re.M | re.S)
  if len(blocks) != 1:
    raise SystemExit(f'README.md: {len(blocks)} bash blocks under {heading_prefix!r}; expected 1')
  return blocks[0].strip()


if __name__ == '__main__':
  print(section_command(sys.argv[1], README.read_text(encoding='utf-8')))
