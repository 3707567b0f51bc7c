#!/usr/bin/env bash
# CI, a venv users already have: tensorflow 2.18.1 with tensorflow-datasets
# 4.9.7. `pip install .` must change none of tensorflow, tensorflow-datasets,
# numpy; then `tfds build` of the sample data and tfds.load work there.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT  # A venv of some 3 GB: not left behind.
venv=${PRELOADED_VENV:-$work/preloaded}
python3 -m venv "$venv"
"$venv/bin/pip" install -q tensorflow==2.18.1 tensorflow-datasets==4.9.7 \
  numpy==2.0.2 protobuf==5.29.6 tensorflow-metadata==1.16.1
# (tensorflow-metadata: the newest is built for protobuf 6 and breaks
# protobuf 5.29 on import; a working venv of this vintage holds 1.16.)
keep='^(tensorflow|tensorflow-datasets|numpy)=='
"$venv/bin/pip" freeze | grep -iE "$keep" | tee "$work/before.txt"
"$venv/bin/pip" install -q .
"$venv/bin/pip" freeze | grep -iE "$keep" | tee "$work/after.txt"
diff "$work/before.txt" "$work/after.txt"
(cd "$work" && "$venv/bin/tfds" build imagenet_resized --imports imagenet_resized \
  --config 16x16 --manual_dir "$OLDPWD/dummy_data" --data_dir "$work/data")
"$venv/bin/python" - "$work/data" <<'PY'
import sys
import tensorflow_datasets as tfds
import imagenet_resized  # noqa: F401
ds = tfds.load('imagenet_resized/16x16', split='validation', data_dir=sys.argv[1])
n = sum(1 for _ in ds)
assert n == 5, n
print(f'tfds.load: {n} validation examples')
PY
# tensorflow-datasets 4.9.7 is a verified release (touch_base.
# VERIFIED_TFDS_VERSIONS): the comparisons of our bytes with its own, again.
"$venv/bin/pip" install -q pytest
"$venv/bin/pytest" -q tests/test_versions.py
