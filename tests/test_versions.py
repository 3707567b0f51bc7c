"""Version ranges, and no refusal of an untested tensorflow-datasets."""

import logging
import re
import tomllib

import pytest

import tensorflow_datasets as tfds
from packaging.specifiers import SpecifierSet

from conftest import REPO, build
from imagenet_resized.tfds_glue import touch_checks


def _requirement(name: str) -> SpecifierSet:
  deps = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies']
  (spec,) = [d[len(name):] for d in deps if re.match(rf'{name}[<>=!]', d)]
  return SpecifierSet(spec)


def _oldest() -> dict[str, str]:
  lines = (REPO / '.ci' / 'oldest_versions.txt').read_text().splitlines()
  return dict(x.split('==') for x in lines if x and not x.startswith('#'))


def test_lower_bounds_are_the_oldest_set_ci_runs():
  oldest = _oldest()
  deps = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies']
  for name, version in oldest.items():
    if not any(re.match(rf'{name}[<>=!]', d) for d in deps):
      continue  # A constraint of TFDS's own deps (see the file's comment).
    spec = _requirement(name)
    assert version in spec, (name, version)
    assert not any(s.operator in ('<', '<=', '==', '~=') for s in spec), name
  assert oldest['tensorflow-datasets'] in touch_checks.VERIFIED_TFDS_VERSIONS


def test_no_upper_bound_on_tensorflow_datasets():
  spec = _requirement('tensorflow-datasets')
  for version in ('4.9.4', '4.9.7', '4.9.10', '4.9.11', '4.10.0', '5.0.0'):
    assert version in spec, version
  assert '4.9.3' not in spec


def test_every_touch_is_used_with_the_installed_tfds(caplog):
  # tensorflow-datasets 4.9.4 has no DownloadManager._get_checksum_dl_result.
  lacking = set() if hasattr(
      tfds.download.DownloadManager, '_get_checksum_dl_result') else {4}
  with caplog.at_level(logging.WARNING):
    assert set(touch_checks.check_touches().skipped) == lacking
  assert caplog.text.count('skipped touch') == len(lacking)


@pytest.mark.slow
def test_an_unverified_tfds_builds_with_every_touch_checked(
    tmp_path, monkeypatch, dummy_data, caplog
):
  """A release the suite has not passed on is not refused: its touches are
  checked (bytes included), and they hold for these very internals."""
  monkeypatch.setattr(tfds, '__version__', '4.9.99')
  monkeypatch.setenv(touch_checks.CACHE_DIR_ENV, str(tmp_path / 'cache'))
  with caplog.at_level(logging.WARNING):
    assert build('8x8', dummy_data, tmp_path / 'data').is_prepared()
  assert caplog.text.count('skipped touch') <= 1  # Touch 4 on 4.9.4.
