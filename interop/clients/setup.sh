#!/usr/bin/env bash
# Builds what the client matrix (../matrix.test.mjs) runs besides Node and
# Chromium: the Python clients' venv (../.venv, from the pinned
# ../requirements.txt) and the reqwest-eventsource subscriber
# (../rust-client, with its own Cargo.lock, into its own target dir).
# Idempotent and quiet: scripts/test runs it before every interop run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Reinstall only when the pins change.
if ! cmp -s requirements.txt .venv/requirements.installed; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
  cp requirements.txt .venv/requirements.installed
fi

cargo build --quiet --locked --manifest-path rust-client/Cargo.toml --target-dir rust-client/target
