"""Hostile files: every attack class is refused, in one line, in bounded memory.

Each case crafts a file byte by byte (`crafted`: pickle opcodes, .npy, zip
and tar headers written from their specifications), then reads it in a fresh
Python process with the package's own readers (`batch_files.Batch` for batches,
`ilsvrc` for ImageNet's tars), and checks that the process:

  * ends normally (no death by signal: the first case crashed numpy),
  * reports exactly the one-line SourceError expected (no raw MemoryError,
    TypeError, ValueError, OverflowError),
  * peaked (VmHWM) no higher than the same process reading a normal 8x8
    batch of the published size, 128,123 rows, from a deflated npz zip.

The child process has a 64 MiB limit on the size of any file it writes
(RLIMIT_FSIZE): an inflated temporary copy larger than that fails. A child
that hangs is stopped after 120 s (a guard, not a timing threshold).

To check that these cases fail on another version of the readers, point
IMAGENET_RESIZED_READERS at the root of its checkout.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import crafted
from crafted import OP, Member, Zeros
from conftest import REPO
from imagenet_resized.tools import fake

READERS = os.environ.get('IMAGENET_RESIZED_READERS', str(REPO))
PUBLISHED_ROWS = 128_123  # The largest published batch.
SIZE = 8
ROW = 3 * SIZE * SIZE

_CHILD = r'''
import json, resource, sys
sys.path.insert(0, {readers!r})
limit = 64 << 20
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from imagenet_resized.ilsvrc import finding, layout, resizing, split_examples
from imagenet_resized.authors import batch_files
from imagenet_resized.common import SourceError

def peak_kib():
  with open('/proc/self/status') as f:
    return int(next(l for l in f if l.startswith('VmHWM')).split()[1])

kind, path, member = {kind!r}, {path!r}, {member!r}
result = {{'error': None, 'message': None, 'rows': 0}}
try:
  if kind in ('npz', 'pickle'):
    batch = batch_files.Batch(path, member, member or path, kind == 'npz')
    for chunk in batch.chunks({size}):
      result['rows'] += len(chunk.images)
  elif kind == 'val tar':
    source = finding.SplitImages('validation', layout.FORM_TARBALL, (path,))
    for unit in split_examples.work_units(source):
      for item in unit.images():
        resizing.resize_image(item.data, item.where, {size})
        result['rows'] += 1
except Exception as e:
  result['error'] = type(e).__name__
  result['message'] = str(e)
result['peak_kib'] = peak_kib()
print(json.dumps(result))
'''


def read_in_child(kind: str, path, member: str | None = None) -> dict:
  """Reads a file as the build would, in a fresh process; its outcome."""
  script = _CHILD.format(
      readers=READERS, kind=kind, path=str(path), member=member, size=SIZE
  )
  proc = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True,
      timeout=120, check=False,
  )
  assert proc.returncode == 0, (
      f'the reader died (return code {proc.returncode}):'
      f' {proc.stderr[-2000:]}'
  )
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def normal_peak_kib(tmp_path_factory) -> int:
  """Peak memory of reading a published-size 8x8 batch from an npz zip."""
  out = tmp_path_factory.mktemp('normal')
  rng = np.random.default_rng(0)
  batch = {
      'data': rng.integers(0, 256, (PUBLISHED_ROWS, ROW), dtype=np.uint8),
      'labels': rng.integers(1, 1001, PUBLISHED_ROWS),
  }
  path = out / 'Imagenet8_val_npz.zip'
  fake.write_zip(str(path), [('val_data.npz', fake.npz_bytes(batch))])
  result = read_in_child('npz', path, 'val_data.npz')
  assert result['error'] is None and result['rows'] == PUBLISHED_ROWS, result
  return result['peak_kib']


# ---------------------------------------------------------------------------
# The crafted files. Each returns (kind, path, member, expected message).

GOOD_ROWS = 4
GOOD_DATA = crafted.ndarray((GOOD_ROWS, ROW), crafted.U1, crafted.raw(bytes(GOOD_ROWS * ROW)))
GOOD_LABELS = crafted.int_list([1] * GOOD_ROWS)


def _write(tmp_path, name: str, data: bytes):
  path = tmp_path / name
  path.write_bytes(data)
  return path


def _pickle_case(tmp_path, data: bytes, labels: bytes = GOOD_LABELS):
  return 'pickle', _write(tmp_path, 'val_data', crafted.batch_pickle(data, labels)), None


def _with_object_field(code: str) -> bytes:
  """numpy.dtype(code) with the state of a record holding one object field
  `a`, reference counted (flags=1): the array's bytes become pointers."""
  object_dtype = crafted.dtype('O8', crafted.dtype_state('|', flags=63))
  fields = (
      OP['EMPTY_DICT'] + crafted.text('a')
      + crafted.tup(object_dtype, crafted.integer(0)) + OP['SETITEM']
  )
  return crafted.dtype(code, crafted.dtype_state(
      '|', names=crafted.tup(crafted.text('a')), fields=fields, elsize=8,
      alignment=1, flags=1,
  ))


def dtype_with_object_field(tmp_path):
  """numpy.dtype handed a state with an object field: the array's bytes
  became pointers the file chose, and freeing them crashed."""
  data = crafted.ndarray((1,), _with_object_field('V8'), crafted.raw(b'A' * 8))
  kind, path, member = _pickle_case(tmp_path, data, crafted.int_list([1]))
  assert len(path.read_bytes()) < 500
  return kind, path, member, (
      f"{path}: `data` has dtype code 'V8', which is not a plain number type;"
      ' expected uint8 pixel values'
  )


def plain_code_with_fields(tmp_path):
  """The same object field, under a dtype code that is a plain number's."""
  data = crafted.ndarray((1, ROW), _with_object_field('u1'), crafted.raw(bytes(ROW)))
  kind, path, member = _pickle_case(tmp_path, data, crafted.int_list([1]))
  return kind, path, member, (
      f"{path}: `data` has a dtype state other than a plain number's (fields,"
      ' names, flags or sizes: a structured or object dtype); expected uint8'
      ' pixel values'
  )


def zero_stride_million_rows(tmp_path):
  """numpy.ndarray called directly: a million rows viewing 192 bytes."""
  data = crafted.strided_view((1_000_000, ROW), crafted.U1, bytes(ROW), (0, 1))
  labels = crafted.strided_view(
      (1_000_000,), crafted.I8, (1).to_bytes(8, 'little'), (0,)
  )
  kind, path, member = _pickle_case(tmp_path, data, labels)
  assert len(path.read_bytes()) < 1000
  return kind, path, member, (
      f'{path}: `data` is a call to numpy.ndarray; expected a uint8 numpy array'
  )


def million_rows_in_192_bytes(tmp_path):
  """An array as numpy pickles one, whose shape claims more than it holds."""
  data = crafted.ndarray((1_000_000, ROW), crafted.U1, crafted.raw(bytes(ROW)))
  kind, path, member = _pickle_case(tmp_path, data, crafted.int_list([1]))
  return kind, path, member, (
      f'{path}: `data` declares shape (1000000, 192) of uint8 (192000000'
      ' bytes) but holds 192 bytes; expected exactly the bytes its shape'
      ' declares'
  )


def shared_nested_labels(tmp_path):
  """Labels as 9 levels of lists, each 10 references to the level below:
  10**9 labels from a few hundred bytes."""
  levels = OP['EMPTY_LIST'] + OP['MARK'] + (OP['BININT1'] + b'\x01') * 10 + OP['APPENDS']
  for level in range(1, 9):  # [below, below, ...]: the first written, then 9 references.
    levels = (
        OP['EMPTY_LIST'] + OP['MARK'] + levels + OP['BINPUT'] + bytes([level])
        + (OP['BINGET'] + bytes([level])) * 9 + OP['APPENDS']
    )
  data = crafted.ndarray((10, ROW), crafted.U1, crafted.raw(bytes(10 * ROW)))
  kind, path, member = _pickle_case(tmp_path, data, levels)
  assert len(path.read_bytes()) - 10 * ROW < 500
  return kind, path, member, (
      f'{path}: `labels` holds a list at row 0; expected a flat list of'
      ' integers 1..1000'
  )


def quadratic_codec(tmp_path):
  """The pixels rebuilt by `_codecs.encode(text, 'punycode')`: minutes of
  CPU for 30,000 distinct characters."""
  slow = ''.join(chr(0x100 + i) for i in range(30_000))
  pixels = crafted.call(
      crafted.glob('_codecs', 'encode'),
      crafted.tup(crafted.text(slow), crafted.text('punycode')),
  )
  data = crafted.ndarray((GOOD_ROWS, ROW), crafted.U1, pixels)
  kind, path, member = _pickle_case(tmp_path, data)
  return kind, path, member, (
      f"{path}: the pickle rebuilds bytes with codec 'punycode', which is not"
      ' allowed (Python pickles bytes as latin1); a batch pickle may only hold'
      ' numpy arrays, dicts, lists and numbers'
  )


def labels_npy_declaring_billions(tmp_path):
  """A labels.npy whose header declares 30 billion labels (240 GB)."""
  npz = crafted.join(crafted.zip_parts([
      Member('data.npy', (crafted.npy('|u1', (GOOD_ROWS, ROW), bytes(GOOD_ROWS * ROW)),)),
      Member('labels.npy', (crafted.npy('<i8', (30_000_000_000,), bytes(8 * GOOD_ROWS)),)),
  ]))
  path = _write(tmp_path, 'val_data.npz', npz)
  return 'npz', path, None, (
      f'{path}: `labels` holds 30000000000 labels but `data` holds 4 rows;'
      ' expected one label per row'
  )


def _npz_bomb_zip(tmp_path, inner, method: int = crafted.DEFLATE) -> tuple:
  parts = crafted.zip_parts([Member('val_data.npz', tuple(inner), method=method)])
  path = tmp_path / 'Imagenet8_val_npz.zip'
  with open(path, 'wb') as f:
    for part in parts:
      f.write(bytes(part.count) if isinstance(part, Zeros) else part)
  assert path.stat().st_size < 2 << 20
  return path


BOMB = 256 << 20  # Inflated bytes the headers do not declare.


def _good_npz_members():
  return [
      Member('data.npy', (crafted.npy('|u1', (GOOD_ROWS, ROW), bytes(GOOD_ROWS * ROW)),)),
      Member('labels.npy', (
          crafted.npy('<i8', (GOOD_ROWS,), (1).to_bytes(8, 'little') * GOOD_ROWS),)),
  ]


def npz_member_inflating_past_its_npy_header(tmp_path):
  """data.npy's zip headers give 256 MiB more than its .npy header declares
  (4 rows), all of it zeros: a 266 KB zip inflating to 256 MiB."""
  data, labels = _good_npz_members()
  data = Member('data.npy', (*data.parts, Zeros(BOMB)))
  path = _npz_bomb_zip(tmp_path, crafted.zip_parts([data, labels]))
  header = len(crafted.npy('|u1', (GOOD_ROWS, ROW), b''))
  return 'npz', path, 'val_data.npz', (
      f'{path}:val_data.npz: data.npy: its .npy header declares'
      f' {header + GOOD_ROWS * ROW} bytes but its zip header'
      f' {header + GOOD_ROWS * ROW + BOMB}; expected the sizes to agree, as'
      ' np.savez writes them'
  )


def npz_with_zeros_before_its_directory(tmp_path):
  """256 MiB of zeros between the last array and the central directory."""
  parts = crafted.zip_parts(_good_npz_members(), between=[Zeros(BOMB)])
  path = _npz_bomb_zip(tmp_path, parts)
  offset = crafted.length(crafted.zip_parts(_good_npz_members())[:4])
  return 'npz', path, 'val_data.npz', (
      f'{path}:val_data.npz: holds unexpected bytes at byte {offset} (not a'
      ' zip header); expected an np.savez file with `data` and `labels`'
  )


def npz_with_zeros_after_its_end(tmp_path):
  """A valid npz followed by 256 MiB of zeros, inside the zip member."""
  good = crafted.zip_parts(_good_npz_members())
  path = _npz_bomb_zip(tmp_path, [*good, Zeros(BOMB)])
  n = crafted.length(good)
  return 'npz', path, 'val_data.npz', (
      f'{path}:val_data.npz: the npz ends after {n} bytes but its zip member'
      f' declares {n + BOMB}; expected an np.savez file with `data` and'
      ' `labels`'
  )


def bzip2_npz_member_inflating_past_its_npy_header(tmp_path):
  """As the deflated case, the npz member compressed with bzip2: 256 MiB of
  zeros in a few hundred bytes. zipfile inflates a bzip2 member a whole
  block of compressed bytes at a time (at least 4 KiB, here all of it)."""
  data, labels = _good_npz_members()
  data = Member('data.npy', (*data.parts, Zeros(BOMB)))
  path = _npz_bomb_zip(
      tmp_path, crafted.zip_parts([data, labels]), method=crafted.BZIP2
  )
  header = len(crafted.npy('|u1', (GOOD_ROWS, ROW), b''))
  return 'npz', path, 'val_data.npz', (
      f'{path}:val_data.npz: data.npy: its .npy header declares'
      f' {header + GOOD_ROWS * ROW} bytes but its zip header'
      f' {header + GOOD_ROWS * ROW + BOMB}; expected the sizes to agree, as'
      ' np.savez writes them'
  )


def _array_bomb(tmp_path, method: int, bomb: int):
  """An npz (stored in its zip) whose data.npy, compressed with `method`,
  declares 4 rows in its .npy and zip headers but inflates `bomb` bytes
  more."""
  data, labels = _good_npz_members()
  size = crafted.length(data.parts)
  data = Member('data.npy', (*data.parts, Zeros(bomb)), method=method, declared=size)
  npz = crafted.join(crafted.zip_parts([data, labels]))
  assert len(npz) < 1 << 20
  path = _write(tmp_path, 'val_data.npz', npz)
  return 'npz', path, None, (
      f'{path}: corrupt or truncated npz (BadZipFile: Bad CRC-32 for file'
      " 'data.npy'); expected an np.savez file with `data` and `labels`"
  )


def bzip2_array_inflating_past_its_declared_size(tmp_path):
  """data.npy compressed with bzip2: 4 rows declared, 256 MiB more inside."""
  return _array_bomb(tmp_path, crafted.BZIP2, BOMB)


def lzma_array_inflating_past_its_declared_size(tmp_path):
  """data.npy compressed with LZMA: 4 rows declared, 64 MiB more inside."""
  return _array_bomb(tmp_path, crafted.LZMA, 64 << 20)


def deflate64_array(tmp_path):
  """data.npy declares deflate64 (method 9), which zipfile cannot read."""
  data, labels = _good_npz_members()
  data = Member('data.npy', data.parts, method=9)
  path = _write(tmp_path, 'val_data.npz', crafted.join(crafted.zip_parts([data, labels])))
  return 'npz', path, None, (
      f'{path}:data.npy: is compressed with method 9 (deflate64), which'
      ' cannot be read here; expected a member stored or compressed with'
      ' deflate, bzip2 or LZMA'
  )


VAL_IMAGE = 'ILSVRC2012_val_00000001.JPEG'


def gnu_sparse_member(tmp_path):
  """A 2 KB tar whose sparse member reads as 2 GiB of zeros."""
  tar = (
      crafted.tar_header(VAL_IMAGE, 512, b'S', sparse=[(0, 512)], real_size=2 << 30)
      + crafted.padded(b'\xff\xd8' + bytes(510)) + crafted.tar_end()
  )
  path = _write(tmp_path, 'ILSVRC2012_img_val.tar', tar)
  assert tarfile.open(path).getmember(VAL_IMAGE).size == 2 << 30
  return 'val tar', path, None, (
      f'{path}:{VAL_IMAGE}: a sparse file; expected regular files only (JPEG'
      ' images, or class tars of them)'
  )


def symlink_member(tmp_path):
  """An image that is a symbolic link (to a file outside the tar)."""
  info = tarfile.TarInfo(VAL_IMAGE)
  info.type, info.linkname = tarfile.SYMTYPE, '/etc/passwd'
  tar = info.tobuf(format=tarfile.GNU_FORMAT) + crafted.tar_end()
  path = _write(tmp_path, 'ILSVRC2012_img_val.tar', tar)
  return 'val tar', path, None, (
      f'{path}:{VAL_IMAGE}: a symbolic link; expected regular files only (JPEG'
      ' images, or class tars of them)'
  )


def member_name_with_a_newline(tmp_path):
  """A member whose name holds a newline: the message stays one line."""
  tar = crafted.tar_header('evil\nname.JPEG', 2) + crafted.padded(b'\xff\xd8') + crafted.tar_end()
  path = _write(tmp_path, 'ILSVRC2012_img_val.tar', tar)
  return 'val tar', path, None, (
      f'{path}:evil\\nname.JPEG: not a validation image name; expected'
      ' ILSVRC2012_val_NNNNNNNN.JPEG with NNNNNNNN in 1..50000'
  )


def image_member_of_a_gigabyte(tmp_path):
  """An image member whose header declares 1 GiB."""
  tar = crafted.tar_header(VAL_IMAGE, 1 << 30) + crafted.padded(b'\xff\xd8') + crafted.tar_end()
  path = _write(tmp_path, 'ILSVRC2012_img_val.tar', tar)
  return 'val tar', path, None, (
      f'{path}:{VAL_IMAGE}: 1073741824 bytes, more than the 67108864 allowed'
      ' for one image; expected a JPEG (or PNG) image'
  )


def pax_header_declaring_a_terabyte(tmp_path):
  """A pax extended header that declares 1 TiB (read when the tar is cut into work units)."""
  tar = (crafted.tar_header('././@PaxHeader', 1 << 40, tarfile.XHDTYPE)
         + bytes(512) + crafted.tar_end())
  path = _write(tmp_path, 'ILSVRC2012_img_val.tar', tar)
  return 'val tar', path, None, (
      f'{path}: not a readable tar (corrupt or truncated: empty header);'
      ' expected the ILSVRC2012 tarball as downloaded'
  )


def decompression_bomb_png(tmp_path):
  """A 9000 x 9000 PNG of 230 KB (232 MiB once decoded), under Pillow's own
  default limit: refused by the explicit ILSVRC limit."""
  png = crafted.png_of_zeros(9000, 9000)
  assert len(png) < 300_000
  info = tarfile.TarInfo(VAL_IMAGE)
  info.size = len(png)
  tar = info.tobuf(format=tarfile.GNU_FORMAT) + crafted.padded(png) + crafted.tar_end()
  path = _write(tmp_path, 'ILSVRC2012_img_val.tar', tar)
  return 'val tar', path, None, (
      f'{path}:{VAL_IMAGE}: a 9000x9000 image, 81000000 pixels, more than the'
      ' 67108864 allowed (a decompression bomb?); expected an image of at most'
      ' 8192 x 8192 pixels'
  )


CASES = [
    dtype_with_object_field, plain_code_with_fields, zero_stride_million_rows,
    million_rows_in_192_bytes, shared_nested_labels, quadratic_codec,
    labels_npy_declaring_billions, npz_member_inflating_past_its_npy_header,
    npz_with_zeros_before_its_directory, npz_with_zeros_after_its_end,
    bzip2_npz_member_inflating_past_its_npy_header,
    bzip2_array_inflating_past_its_declared_size,
    lzma_array_inflating_past_its_declared_size, deflate64_array,
    gnu_sparse_member, symlink_member, member_name_with_a_newline,
    image_member_of_a_gigabyte,
    pax_header_declaring_a_terabyte, decompression_bomb_png,
]


@pytest.mark.slow
@pytest.mark.parametrize('case', CASES, ids=lambda c: c.__name__)
def test_hostile_file_is_refused_in_one_line_in_bounded_memory(
    case, tmp_path, normal_peak_kib
):
  kind, path, member, message = case(tmp_path)
  result = read_in_child(kind, path, member)
  assert (result['error'], result['message']) == ('SourceError', message)
  assert '\n' not in result['message']
  assert result['peak_kib'] <= normal_peak_kib, (
      f'peak {result["peak_kib"]} KiB above a normal 8x8 read'
      f' ({normal_peak_kib} KiB)'
  )


def test_crafted_pickles_are_real_pickles():
  """The opcode writer is right: the standard unpickler reads its batches."""
  values = bytes(range(256)) * 3
  data = crafted.ndarray((GOOD_ROWS, ROW), crafted.U1, crafted.raw(values))
  loaded = pickle.loads(crafted.batch_pickle(data, crafted.int_list([1, 2, 3, 1000])))
  assert loaded['labels'] == [1, 2, 3, 1000]
  np.testing.assert_array_equal(
      loaded['data'], np.frombuffer(values, np.uint8).reshape(GOOD_ROWS, ROW)
  )


def test_crafted_zips_are_real_zips(tmp_path):
  """The zip writer is right: zipfile and numpy read its npz, and its deflated
  zeros inflate to what they say."""
  import io
  import zipfile
  npz = crafted.join(crafted.zip_parts(_good_npz_members()))
  with np.load(io.BytesIO(npz)) as z:
    assert z['data'].shape == (GOOD_ROWS, ROW) and list(z['labels']) == [1] * 4
  outer = crafted.join(crafted.zip_parts(
      [Member('m', (b'abc', Zeros(3 << 20), b'xyz'), deflated=True)]
  ))
  with zipfile.ZipFile(io.BytesIO(outer)) as zf:
    assert zf.read('m') == b'abc' + bytes(3 << 20) + b'xyz'


def test_sizes_too_large_to_print_are_given_by_magnitude():
  """A shape of 32 sizes of 600 digits: its product has 19,000 digits, more
  than Python prints (a raw ValueError); the message gives magnitudes."""
  import io
  from imagenet_resized.readers import pickle_batches
  from imagenet_resized import common

  def long_int(n: int) -> bytes:
    body = n.to_bytes((n.bit_length() + 8) // 8, 'little', signed=True)
    return OP['LONG1'] + bytes([len(body)]) + body

  huge = 10**600
  data = crafted.call(
      crafted.glob('numpy.core.multiarray', '_reconstruct'),
      crafted.tup(crafted.glob('numpy', 'ndarray'), crafted.tup(crafted.integer(0)),
                  crafted.raw(b'b')),
  ) + crafted.tup(
      crafted.integer(1), crafted.tup(*[long_int(huge)] * 32), crafted.U1,
      OP['NEWFALSE'], crafted.raw(bytes(ROW)),
  ) + OP['BUILD']
  pickled = crafted.batch_pickle(data, GOOD_LABELS)
  with pytest.raises(common.SourceError) as e:
    list(pickle_batches.iter_pickle_chunks(io.BytesIO(pickled), 'b', SIZE))
  magnitude = f'over 2**{huge.bit_length() - 1}'
  assert str(e.value) == (
      f'b: `data` declares shape ({", ".join([magnitude] * 8)}, ... (32'
      f' dimensions)) of uint8 (over 2**{(huge**32).bit_length() - 1} bytes)'
      ' but holds 192 bytes; expected exactly the bytes its shape declares'
  )
