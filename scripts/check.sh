#!/usr/bin/env bash
# Set up a virtual environment and run every check: lint, format, types, tests.
# This is the README's "set-up plus tests" command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
# torch first, pinned: 2.13.0 is the CPU build here. Anything that admits a newer torch pulls a multi-GB CUDA build.
.venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
