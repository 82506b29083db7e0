#!/usr/bin/env bash
# One-step set-up on a fresh Debian machine with Python 3.11: a virtual environment in .venv
# with the CPU build of PyTorch pinned (an open range would pull a multi-GB CUDA build),
# the package itself, and with --test the test tools.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".${extras}"
