"""Command line: `python -m imagenet_resized ...`, or `imagenet-resized ...`.

  labels  the 1000 classes as CSV: label, WordNet ID, name, imagenet2012 label
  show    a captioned picture grid (PNG) of examples of a prepared dataset
  fake    fake source archives in the authors' exact names and layout
  arrays  export a prepared split as memory-mapped .npy arrays (arrays.load)

A user's mistake (unknown config, missing dataset, bad path) ends with one
line on stderr and exit status 2 (usage) or 1 (everything else). TensorFlow's
start-up logging is kept quiet (`quiet_start`) unless `--verbose` is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import csv
import logging
import os
import sys
from typing import NoReturn

import tensorflow_datasets as tfds

import imagenet_resized
from imagenet_resized import common
from imagenet_resized import configs
from imagenet_resized import labels
from imagenet_resized.authors import publication
from imagenet_resized.common import SourceError
from imagenet_resized.tools import fake
from imagenet_resized.tools import picture_grid

PROG = 'imagenet-resized'
# `fake` writes the published sizes; `show` draws any registered config.
CONFIGS = tuple(f'{size}x{size}' for size in common.SIZES)
SHOW_CONFIGS = tuple(c.name for c in configs.REGISTERED)
DEFAULT_SHOW_EXAMPLES = 16


class CliError(Exception):
  """A user's mistake, reported as one line without a traceback."""


class _Parser(argparse.ArgumentParser):
  """argparse, but a usage error is one line (argparse prints the usage too)."""

  def error(self, message: str) -> NoReturn:
    self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def _add_verbose(parser: argparse.ArgumentParser) -> None:
  # Acted on when the package is imported (quiet_start reads the command
  # line), before argparse runs; declared here so that it is accepted anywhere.
  parser.add_argument(
      '-v',
      '--verbose',
      action='store_true',
      default=argparse.SUPPRESS,
      help="show TensorFlow's start-up logging and TFDS's warnings",
  )


def _int_at_least(low: int, high: int | None = None):
  """An argparse type: an int in low..high."""

  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(
          f'{text!r} is not a whole number'
      ) from None
    if value < low or (high is not None and value > high):
      allowed = f'{low}..{high}' if high is not None else f'>= {low}'
      raise argparse.ArgumentTypeError(f'{value} is not in {allowed}')
    return value

  return parse


def write_labels_csv(out) -> None:
  """Writes the 1000 classes, in label order, as CSV to the text file `out`."""
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(['label', 'wnid', 'name', 'imagenet2012_label'])
  for label, (wnid, name) in enumerate(zip(labels.WNIDS, labels.NAMES)):
    writer.writerow([label, wnid, name, labels.to_imagenet2012(label)])


def read_examples(config: str, split: str, data_dir: str | None, count: int):
  """The first `count` (image, label) of a prepared split, in file order."""
  if data_dir is not None and not os.path.isdir(data_dir):
    raise CliError(
        f'--data-dir {data_dir}: no such folder; expected the data_dir the'
        ' dataset was built into'
    )
  builder = imagenet_resized.Builder(config=config, data_dir=data_dir)
  if not builder.is_prepared():
    raise CliError(builder.unprepared(data_dir))
  try:  # Checked here, before TensorFlow is started for the reading.
    builder.info.splits[split]
  except ValueError as e:  # An unknown split or a bad slice.
    raise CliError(f'--split {split}: {" ".join(str(e).split())}') from None
  if builder.info.file_format in tfds.core.FileFormat.with_random_access():
    # array_record: read without TensorFlow.
    source = builder.as_data_source(split=split)
    found = (source[i] for i in range(min(count, len(source))))
  else:
    found = tfds.as_numpy(
        builder.as_dataset(split=split, shuffle_files=False).take(count)
    )
  return [(example['image'], int(example['label'])) for example in found]


def _show(args: argparse.Namespace) -> None:
  folder = os.path.dirname(os.path.abspath(args.output))
  if not os.path.isdir(folder):  # Known before the data is read.
    raise CliError(
        f'{args.output}: cannot write the picture (no folder {folder})'
    )
  examples = read_examples(args.config, args.split, args.data_dir, args.n)
  if not examples:
    raise CliError(f'imagenet_resized/{args.config} {args.split}: no examples')
  grid = picture_grid.draw_grid(
      [image for image, _ in examples],
      [labels.NAMES[label] for _, label in examples],
  )
  try:
    grid.save(args.output, format='PNG')
  except OSError as e:
    raise CliError(
        f'{args.output}: cannot write the picture ({e.strerror or e})'
    ) from None
  print(
      f'{args.output}: {len(examples)} examples of imagenet_resized/'
      f'{args.config} {args.split}, {grid.width}x{grid.height} pixels'
  )


def _fake(args: argparse.Namespace) -> None:
  if os.path.exists(args.out) and not os.path.isdir(args.out):
    raise CliError(f'--out {args.out}: exists and is not a folder')
  if args.dummy_data:
    written = fake.write_dummy_data(args.out)
  else:
    written = fake.write_sources(
        args.out,
        configs.from_name(args.config).size,
        fmt=args.format,
        train_batches=args.train_batches,
        examples_per_batch=args.examples_per_batch,
        val_examples=args.val_examples,
        seed=args.seed,
        zipped=not args.extracted,
    )
  for path in written:
    print(path)


def _arrays(args: argparse.Namespace) -> None:
  from imagenet_resized import arrays

  try:
    found = arrays.load(
        args.config,
        args.split,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        refresh=args.refresh,
        verify=args.verify,
    )
  except arrays.ArraysError as e:
    raise CliError(str(e)) from None
  stats = ''
  if found.mean is not None:
    stats = (
        ' train mean '
        + ', '.join(f'{v:.3f}' for v in found.mean)
        + ' std '
        + ', '.join(f'{v:.3f}' for v in found.std)
    )
  print(
      f'{found.folder}: {len(found)} examples of imagenet_resized/'
      f'{args.config} {args.split}, images {found.images.shape} uint8,'
      f' labels int64;{stats}'
  )


def make_parser() -> argparse.ArgumentParser:
  parser = _Parser(
      prog=PROG,
      description=(
          'Tools for imagenet_resized, the downsampled ImageNet of Chrabaszcz'
          ' et al. (2017) for TensorFlow Datasets.'
      ),
  )
  _add_verbose(parser)
  commands = parser.add_subparsers(
      dest='command', metavar='COMMAND', required=True, parser_class=_Parser
  )

  labels_parser = commands.add_parser(
      'labels',
      help='the 1000 classes as CSV on stdout',
      description=(
          'Writes the 1000 classes in label order as CSV on stdout, with the'
          ' header label,wnid,name,imagenet2012_label: our label (the'
          " authors' order), its WordNet ID, its name (first WordNet lemma)"
          ' and the label of the same class in imagenet2012 (sorted WordNet'
          ' IDs, the order of most pretrained models).'
      ),
  )
  _add_verbose(labels_parser)
  labels_parser.set_defaults(run=lambda _: write_labels_csv(sys.stdout))

  show = commands.add_parser(
      'show',
      help='a PNG grid of examples of a prepared dataset',
      description=(
          'Draws the first N examples of a split of a prepared dataset, in'
          ' file order, as a PNG grid: each picture enlarged (nearest'
          f' neighbour) to at least {picture_grid.TILE_PX}x{picture_grid.TILE_PX}'
          ' pixels, captioned with its class name.'
      ),
  )
  show.add_argument(
      '--config',
      required=True,
      choices=SHOW_CONFIGS,
      help='the image size, e.g. 32x32',
  )
  show.add_argument(
      '--split',
      required=True,
      help='train or validation (TFDS slices such as'
      ' "validation[100:]" work too)',
  )
  show.add_argument(
      '--data-dir',
      default=None,
      help="where the dataset was built (default: TFDS's,"
      ' ~/tensorflow_datasets or $TFDS_DATA_DIR)',
  )
  show.add_argument(
      '-n',
      type=_int_at_least(1),
      default=DEFAULT_SHOW_EXAMPLES,
      help=f'how many examples (default {DEFAULT_SHOW_EXAMPLES})',
  )
  show.add_argument('-o', '--output', required=True, help='the PNG to write')
  _add_verbose(show)
  show.set_defaults(run=_show)

  fake_parser = commands.add_parser(
      'fake',
      help='fake source archives, ready for --manual_dir',
      description=(
          "Writes fake sources for one config in the authors' exact archive"
          ' names and layout (npz or pickle zips), with image-like content and'
          ' labels 1..1000, deterministic for a seed; or, with --dummy-data,'
          " the repository's dummy_data/ (all four sizes). Build from them"
          ' with --manual_dir OUT.'
      ),
  )
  which = fake_parser.add_mutually_exclusive_group(required=True)
  which.add_argument(
      '--config', choices=CONFIGS, help='the image size, e.g. 32x32'
  )
  which.add_argument(
      '--dummy-data',
      action='store_true',
      help="write the repository's dummy_data/ (ignores the options below)",
  )
  fake_parser.add_argument(
      '--out', required=True, help='the folder to write into'
  )
  fake_parser.add_argument(
      '--format',
      choices=('npz', 'pickle'),
      default='npz',
      help='npz zips (as downloaded) or the original pickle zips (default npz)',
  )
  fake_parser.add_argument(
      '--train-batches',
      type=_int_at_least(1, publication.NUM_TRAIN_BATCHES),
      default=3,
      help='train batches, 1..10 (default 3)',
  )
  fake_parser.add_argument(
      '--examples-per-batch',
      type=_int_at_least(1),
      default=10,
      help='examples in each train batch (default 10)',
  )
  fake_parser.add_argument(
      '--val-examples',
      type=_int_at_least(1),
      default=10,
      help='validation examples (default 10)',
  )
  fake_parser.add_argument(
      '--seed',
      type=_int_at_least(0),
      default=0,
      help='random seed of the content (default 0)',
  )
  fake_parser.add_argument(
      '--extracted',
      action='store_true',
      help='write the extracted batch files instead of the zips',
  )
  _add_verbose(fake_parser)
  fake_parser.set_defaults(run=_fake)

  arrays_parser = commands.add_parser(
      'arrays',
      help='export a prepared split as memory-mapped .npy arrays',
      description=(
          'Exports the examples of a split of a prepared dataset, in the'
          ' order of as_dataset(shuffle_files=False), as images.npy (N, S, S,'
          ' 3) uint8 and labels.npy (N,) int64 with a fingerprint, next to'
          ' the prepared dataset (or in --cache-dir); if a checked export is'
          ' there already, says where it is. Read them with'
          ' imagenet_resized.arrays.load (docs/arrays.md).'
      ),
  )
  arrays_parser.add_argument(
      '--config',
      required=True,
      help='e.g. 32x32, 16x16_120, 32x32_ilsvrc2012, 32x32_100',
  )
  arrays_parser.add_argument(
      '--split',
      required=True,
      help='a split of the prepared dataset, e.g. train',
  )
  arrays_parser.add_argument(
      '--data-dir',
      default=None,
      help="where the dataset was built (default: TFDS's,"
      ' ~/tensorflow_datasets or $TFDS_DATA_DIR)',
  )
  arrays_parser.add_argument(
      '--cache-dir',
      default=None,
      help='a local folder for the arrays (needed for a data_dir that is not'
      ' local, e.g. gs://)',
  )
  arrays_parser.add_argument(
      '--refresh', action='store_true', help='export again, over anything there'
  )
  arrays_parser.add_argument(
      '--verify',
      action='store_true',
      help='verify the full checksums of the files',
  )
  _add_verbose(arrays_parser)
  arrays_parser.set_defaults(run=_arrays)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Runs the command line; returns the exit status."""
  args = make_parser().parse_args(argv)
  # TFDS's warnings about the folders it looks through are noise here.
  absl_logger = logging.getLogger('absl')
  absl_level = absl_logger.level
  if not getattr(args, 'verbose', False):
    absl_logger.setLevel(logging.ERROR)
  try:
    args.run(args)
  except BrokenPipeError:  # `imagenet-resized labels | head`
    # Python would complain again when it flushes stdout at exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
  except (CliError, SourceError, OSError) as e:
    message = str(e)
    if isinstance(e, OSError) and e.filename:
      message = f'{e.filename}: {e.strerror}'
    first = message.splitlines()[0] if message else type(e).__name__
    print(f'{PROG}: error: {first}', file=sys.stderr)
    return 1
  finally:
    absl_logger.setLevel(absl_level)
  return 0


if __name__ == '__main__':
  sys.exit(main())
