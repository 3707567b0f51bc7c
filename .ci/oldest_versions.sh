#!/usr/bin/env bash
# CI, oldest set: every lower bound of pyproject.toml (.ci/oldest_versions.txt)
# in a fresh venv, then the slice of the suite named in .ci/oldest_slice.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n ${OLDEST_VENV:-} ]]; then
  venv=$OLDEST_VENV
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT  # A venv of some 3 GB: not left behind.
  venv=$work/oldest
fi
pins=$(grep -v '^#' .ci/oldest_versions.txt)
python3 -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/pip" install -q -e '.[test]' -c <(echo "$pins") $pins
"$venv/bin/pip" freeze | grep -iE '^(tensorflow|tensorflow-datasets|numpy|pillow|apache-beam|mlcroissant|protobuf)=='
# shellcheck disable=SC2046
"$venv/bin/pytest" -q $(grep -v '^#' .ci/oldest_slice.txt)
