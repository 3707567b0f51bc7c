"""Class names and the imagenet2012 mapping, against the facts TFDS ships."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from imagenet_resized import labels, resources

TFDS_ROOT = pathlib.Path(tfds.__file__).parent


def _lines(path: pathlib.Path) -> list[str]:
  return [line.strip() for line in path.read_text().splitlines() if line.strip()]


# Facts shipped with tensorflow-datasets: our classes in the authors' order,
# and imagenet2012's classes (the ILSVRC2012 index order).
TFDS_RESIZED_WNIDS = _lines(TFDS_ROOT / 'image_classification/imagenet_resized_labels.txt')
TFDS_2012_WNIDS = _lines(TFDS_ROOT / 'datasets/imagenet2012/labels.txt')
# Our label -> imagenet2012 label, from the facts alone.
EXPECTED_TO_2012 = np.array(
    [TFDS_2012_WNIDS.index(wnid) for wnid in TFDS_RESIZED_WNIDS], np.int64
)

# WordNet facts: (WordNet ID, first lemma, all lemmas).
KNOWN_CLASSES = [
    ('n02119789', 'kit fox', ('kit fox', 'Vulpes macrotis')),
    ('n02100735', 'English setter', ('English setter',)),
    ('n01440764', 'tench', ('tench', 'Tinca tinca')),
    ('n01443537', 'goldfish', ('goldfish', 'Carassius auratus')),
    ('n02123045', 'tabby', ('tabby', 'tabby cat')),
    ('n02504458', 'African elephant', ('African elephant', 'Loxodonta africana')),
    ('n04254680', 'soccer ball', ('soccer ball',)),
    ('n04399382', 'teddy', ('teddy', 'teddy bear')),
    ('n07920052', 'espresso', ('espresso',)),
    ('n09472597', 'volcano', ('volcano',)),
    ('n02012849', 'crane', ('crane',)),  # The bird.
    ('n03126707', 'crane', ('crane',)),  # The machine.
    ('n03710721', 'maillot', ('maillot', 'tank suit')),
]


# ---------------------------------------------------------------------------
# WNIDS and NAMES


def test_wnids_are_the_authors_order_and_the_class_label_names(tmp_path):
  assert list(labels.WNIDS) == TFDS_RESIZED_WNIDS
  assert labels.WNIDS[:3] == ('n02119789', 'n02100735', 'n02110185')
  builder = tfds.builder('imagenet_resized/8x8', data_dir=str(tmp_path))
  assert builder.info.features['label'].names == list(labels.WNIDS)


def test_imagenet2012_order_is_the_sorted_wnids():
  assert sorted(labels.WNIDS) == TFDS_2012_WNIDS
  assert list(labels.IMAGENET2012_WNIDS) == TFDS_2012_WNIDS


@pytest.mark.parametrize('wnid, name, lemmas', KNOWN_CLASSES)
def test_names_are_wordnet_facts(wnid, name, lemmas):
  label = labels.WNIDS.index(wnid)
  assert labels.NAMES[label] == name
  assert labels.LEMMAS[label] == lemmas


def test_label_zero_is_kit_fox():
  assert labels.NAMES[0] == 'kit fox'


def test_names_file_covers_exactly_our_wnids_in_label_order():
  rows = [
      line.split('\t')
      for line in resources.read_text('class_names.tsv').splitlines()
      if line and not line.startswith('#')
  ]
  assert [row[0] for row in rows] == TFDS_RESIZED_WNIDS
  assert all(len(row) == 2 and row[1].strip() == row[1] != '' for row in rows)
  assert len(labels.NAMES) == len(labels.LEMMAS) == 1000
  assert all(name and name == lemmas[0] for name, lemmas in zip(labels.NAMES, labels.LEMMAS))


def test_only_crane_and_maillot_names_repeat():
  seen, repeated = set(), set()
  for name in labels.NAMES:
    (repeated if name in seen else seen).add(name)
  assert repeated == {'crane', 'maillot'}


# ---------------------------------------------------------------------------
# to_imagenet2012 / from_imagenet2012


def test_every_class_maps_to_its_imagenet2012_index():
  ours = np.arange(1000)
  np.testing.assert_array_equal(labels.to_imagenet2012(ours), EXPECTED_TO_2012)
  for label in range(1000):  # WNIDs agree both ways.
    assert TFDS_2012_WNIDS[labels.to_imagenet2012(label)] == labels.WNIDS[label]
    assert labels.WNIDS[labels.from_imagenet2012(label)] == TFDS_2012_WNIDS[label]


def test_from_is_the_inverse_of_to():
  ours = np.arange(1000)
  np.testing.assert_array_equal(labels.from_imagenet2012(labels.to_imagenet2012(ours)), ours)
  np.testing.assert_array_equal(labels.to_imagenet2012(labels.from_imagenet2012(ours)), ours)


@pytest.mark.parametrize('fn, table', [
    (labels.to_imagenet2012, EXPECTED_TO_2012),
    (labels.from_imagenet2012, np.argsort(EXPECTED_TO_2012)),
])
def test_python_int_gives_python_int(fn, table):
  for label in (0, 1, 999, 500):
    result = fn(label)
    assert type(result) is int
    assert result == table[label]


@pytest.mark.parametrize('dtype, out_dtype', [
    (np.int64, np.int64), (np.int32, np.int32), (np.uint16, np.uint16),
    # 999 does not fit in 8 bits: widened to the smallest type that holds it.
    (np.uint8, np.int16),
])
@pytest.mark.parametrize('fn, table', [
    (labels.to_imagenet2012, EXPECTED_TO_2012),
    (labels.from_imagenet2012, np.argsort(EXPECTED_TO_2012)),
])
def test_numpy_array_gives_numpy_array_of_same_shape(fn, table, dtype, out_dtype):
  given = np.array([[0, 1, 2], [200, 100, 3]], dtype)
  result = fn(given)
  assert isinstance(result, np.ndarray)
  assert result.shape == given.shape and result.dtype == out_dtype
  np.testing.assert_array_equal(result, table[given.astype(np.int64)])
  scalar = fn(np.int32(7))
  assert isinstance(scalar, np.int32) and scalar == table[7]
  empty = fn(np.zeros((0,), np.int64))
  assert empty.shape == (0,) and empty.dtype == np.int64


@pytest.mark.parametrize('dtype', [tf.int64, tf.int32, tf.uint8])
@pytest.mark.parametrize('fn, table', [
    (labels.to_imagenet2012, EXPECTED_TO_2012),
    (labels.from_imagenet2012, np.argsort(EXPECTED_TO_2012)),
])
def test_tensor_gives_tensor(fn, table, dtype):
  given = np.array([[0, 5], [250, 17]])
  result = fn(tf.constant(given, dtype))
  assert tf.is_tensor(result)
  assert result.dtype == (tf.int16 if dtype == tf.uint8 else dtype)
  np.testing.assert_array_equal(result.numpy(), table[given])
  assert fn(tf.constant(3, tf.int64)).numpy() == table[3]


def test_works_inside_tf_data_map():
  ours = np.arange(1000, dtype=np.int64)
  ds = tf.data.Dataset.from_tensor_slices(
      {'image': np.zeros((1000, 2, 2, 3), np.uint8), 'label': ours}
  )
  # As in the README: (image, label) pairs, labels moved to imagenet2012.
  mapped = ds.map(lambda ex: (ex['image'], labels.to_imagenet2012(ex['label'])))
  got = np.array([label for _, label in mapped.as_numpy_iterator()])
  np.testing.assert_array_equal(got, EXPECTED_TO_2012)
  # Batched, and back again.
  back = mapped.batch(64).map(lambda image, label: labels.from_imagenet2012(label))
  np.testing.assert_array_equal(np.concatenate(list(back.as_numpy_iterator())), ours)


def test_works_in_a_tf_function_with_unknown_shape():
  fn = tf.function(
      labels.to_imagenet2012,
      input_signature=[tf.TensorSpec([None], tf.int32)],
  )
  np.testing.assert_array_equal(
      fn(tf.constant([0, 999], tf.int32)).numpy(), EXPECTED_TO_2012[[0, 999]]
  )


@pytest.mark.parametrize('bad', [-1, 1000])
def test_out_of_range_is_refused_for_every_kind(bad):
  with pytest.raises(ValueError, match=rf'^to_imagenet2012: label {bad} is outside 0\.\.999$'):
    labels.to_imagenet2012(bad)
  with pytest.raises(ValueError, match=rf'^from_imagenet2012: label {bad} is outside 0\.\.999$'):
    labels.from_imagenet2012(np.array([3, bad, 4]))
  with pytest.raises(
      tf.errors.InvalidArgumentError,
      match=r'to_imagenet2012: labels must be in 0\.\.999',
  ):
    labels.to_imagenet2012(tf.constant([3, bad]))
  ds = tf.data.Dataset.from_tensor_slices(np.array([3, bad])).map(labels.to_imagenet2012)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'labels must be in 0\.\.999'):
    list(ds.as_numpy_iterator())


@pytest.mark.parametrize('bad', [1.0, np.array([1.5]), True, tf.constant([1.0])])
def test_non_integers_are_refused(bad):
  with pytest.raises(TypeError, match=r'^to_imagenet2012: expected integer labels'):
    labels.to_imagenet2012(bad)
