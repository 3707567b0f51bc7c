"""Imported by a build under test (`tfds build --imports ...,pause_build`):
pauses the build mid-way, as a handshake with the test.

TFDS's shuffler is wrapped (nothing of imagenet_resized is replaced): when it
has been given its third example, with the shuffler spilling at once
(`Builder.SHUFFLE_MEMORY_BYTES = 1`, so that spill files exist), the build
process prints `paused` and the pids of its children (the workers) on
stdout, then waits reading stdin until the test closes it or stops the
process.
"""

import os
import sys

import psutil
from tensorflow_datasets.core import shuffle

import imagenet_resized

imagenet_resized.Builder.SHUFFLE_MEMORY_BYTES = 1
_add = shuffle.Shuffler.add
_seen = [0]


def _paused_add(self, key, data):
  out = _add(self, key, data)
  _seen[0] += 1
  if _seen[0] == 3:
    children = psutil.Process(os.getpid()).children()
    print('paused', *(p.pid for p in children), flush=True)
    sys.stdin.read()
  return out


shuffle.Shuffler.add = _paused_add
