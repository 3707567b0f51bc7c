#!/usr/bin/env bash
# CI step: the linter configured in pyproject.toml ([tool.ruff]) on the
# package, the tests and the benchmarks. Needs ruff (the test extra has it).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff=${RUFF:-ruff}
if [ -x .venv/bin/ruff ]; then ruff=.venv/bin/ruff; fi
"$ruff" check imagenet_resized tests benchmarks
