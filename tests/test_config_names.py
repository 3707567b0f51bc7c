"""One name, one dataset: the authors' data and ILSVRC2012 builds never share a name."""

import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from imagenet_resized import ImagenetResizedConfig
from imagenet_resized.configs import ConfigError

PUBLISHED = ['8x8', '16x16', '32x32', '64x64']


def test_registered_configs_name_their_source():
  configs = imagenet_resized.Builder.BUILDER_CONFIGS
  assert [c.name for c in configs] == (
      PUBLISHED + [f'{n}_ilsvrc2012' for n in PUBLISHED] + ['16x16_120'])
  for config in configs:
    assert config.source == ('ilsvrc2012' if config.name.endswith('_ilsvrc2012') else 'authors')
    assert str(config.version) == '0.1.0'
  builder = tfds.builder('imagenet_resized/32x32_ilsvrc2012')
  assert builder.builder_config.size == 32 and builder.builder_config.source == 'ilsvrc2012'
  assert tfds.builder('imagenet_resized/32x32').builder_config.source == 'authors'


@pytest.mark.parametrize('kwargs, name', [
    (dict(size=32), '32x32'),
    (dict(size=32, source='ilsvrc2012'), '32x32_ilsvrc2012'),
    (dict(size=24, source='ilsvrc2012'), '24x24_ilsvrc2012'),
    (dict(size=24, source='ilsvrc2012', jpeg_draft=True), '24x24_ilsvrc2012_draft'),
    (dict(size=64, source='ilsvrc2012', jpeg_draft=True), '64x64_ilsvrc2012_draft'),
    (dict(size=16, num_classes=120), '16x16_120'),
    (dict(size=32, num_classes=100), '32x32_100'),
])
def test_each_dataset_has_one_name(kwargs, name):
  assert ImagenetResizedConfig(**kwargs).name == name
  # Asking for the same name explicitly is fine.
  assert ImagenetResizedConfig(name=name, **kwargs).name == name


@pytest.mark.parametrize('kwargs, message', [
    (dict(size=24),
     'size=24: the authors published 8x8, 16x16, 32x32 and 64x64 only; to'
     ' compute 24x24 from the ILSVRC2012 JPEGs, ask for'
     " ImagenetResizedConfig(size=24, source='ilsvrc2012')"),
    (dict(size=32, jpeg_draft=True),
     "jpeg_draft=True: only JPEGs can be draft-decoded; expected"
     " source='ilsvrc2012' with it"),
    (dict(size=32, source='imagenet'),
     "source='imagenet': expected 'authors' (the authors' archives) or"
     " 'ilsvrc2012' (computed from the ILSVRC2012 JPEGs)"),
    (dict(size=32, source='ilsvrc2012', name='32x32'),
     "name='32x32': this config is '32x32_ilsvrc2012'; expected no name (each"
     ' dataset has one name, so that a name always means the same examples)'),
    (dict(size=0), 'size=0: expected a positive int'),
    (dict(size=16, num_classes=1000),
     "num_classes=1000: expected 1..999, the first classes of the authors'"
     ' labels (all 1000 is ImagenetResizedConfig(size=16))'),
    (dict(size=16, num_classes=120, source='ilsvrc2012'),
     "num_classes=120: class subsets are drawn from the authors' batches;"
     " expected source='authors'"),
    (dict(size=True), 'size=True: expected a positive int'),
])
def test_ambiguous_or_impossible_configs_are_refused(kwargs, message):
  with pytest.raises(ConfigError) as e:
    ImagenetResizedConfig(**kwargs)
  assert str(e.value) == message
  assert isinstance(e.value, ValueError)


def test_a_registered_dataset_asked_for_by_its_arguments():
  """TFDS compares configs by identity: the arguments give the registered one."""
  config = ImagenetResizedConfig(size=32, source='ilsvrc2012')
  assert config is tfds.builder('imagenet_resized/32x32_ilsvrc2012').builder_config
  builder = tfds.builder('imagenet_resized', config=config)
  assert builder.builder_config.name == '32x32_ilsvrc2012'
  custom = tfds.builder(
      'imagenet_resized', config=ImagenetResizedConfig(size=24, source='ilsvrc2012')
  )
  assert custom.builder_config.name == '24x24_ilsvrc2012'
