"""Only tested tensorflow-datasets releases build; pyproject admits no other."""

import re
import tomllib

import pytest
import tensorflow_datasets as tfds
from packaging.specifiers import SpecifierSet

from conftest import REPO, build
from imagenet_resized import tfds_internals
from imagenet_resized.tfds_internals import UntestedTfdsError
from test_bad_input import assert_nothing_built


def _requirement(name: str) -> SpecifierSet:
  deps = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies']
  (spec,) = [d[len(name):] for d in deps if re.match(rf'{name}[<>=!]', d)]
  return SpecifierSet(spec)


def test_pyproject_admits_exactly_the_tested_tfds_releases():
  spec = _requirement('tensorflow-datasets')
  for version in ('4.9.4', '4.9.8', '4.9.9', '4.9.10', '4.9.11', '4.10.0', '5.0.0'):
    assert (version in spec) == (version in tfds_internals.TESTED_TFDS_VERSIONS), version


def test_installed_tfds_is_a_tested_release():
  assert tfds.__version__ in tfds_internals.TESTED_TFDS_VERSIONS


@pytest.mark.slow
def test_an_untested_tfds_is_refused_in_one_line(tmp_path, monkeypatch, dummy_data):
  monkeypatch.setattr(tfds, '__version__', '4.9.11')
  monkeypatch.delenv(tfds_internals.ALLOW_UNTESTED_ENV, raising=False)
  with pytest.raises(UntestedTfdsError) as e:
    build('8x8', dummy_data, tmp_path / 'data')
  message = str(e.value)
  assert '\n' not in message
  # docs/versions.md shows this very message.
  assert f'```\n{message}\n```' in (REPO / 'docs' / 'versions.md').read_text()
  assert_nothing_built('8x8', tmp_path / 'data')


@pytest.mark.slow
def test_an_untested_tfds_builds_when_allowed(tmp_path, monkeypatch, dummy_data):
  monkeypatch.setattr(tfds, '__version__', '4.9.11')
  monkeypatch.setenv(tfds_internals.ALLOW_UNTESTED_ENV, '1')
  assert build('8x8', dummy_data, tmp_path / 'data').is_prepared()
