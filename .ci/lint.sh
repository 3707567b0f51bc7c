#!/usr/bin/env bash
# CI step: the formatter (pyink, on the package) and the linter (ruff, on the
# package, the tests and the benchmarks), both configured in pyproject.toml.
# Needs both (the test extra has them).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LINT_BIN:-.venv/bin}
"$bin/pyink" --check imagenet_resized
"$bin/ruff" check imagenet_resized tests benchmarks
