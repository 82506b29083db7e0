#!/usr/bin/env bash
# One-step set-up on a fresh Debian machine with Python 3.11: a virtual environment in .venv
# with the CPU build of PyTorch pinned (an open range would pull a multi-GB CUDA build),
# the package itself, and with --test the test tools (--bench: also the benchmark's extras).
set -euo pipefail
cd "$(dirname "$0")"
extras=""
case "${1:-}" in
  --test) extras="[test]" ;;  # also Debian's game soundtracks: real recordings for the tests, the benchmark and the zoo
  --bench) extras="[test,bench]" ;;
esac

# FluidSynth and a General MIDI soundfont render MIDI to audio (MIDI tests, benchmark data).
debian_packages="fluidsynth fluid-soundfont-gm"
# Recorded music of the benchmark and of the model zoo (harmonycloak/zoo/sources.py); nexuiz-music and
# ufoai-music keep their Ogg files in .pk3 (zip) archives. planetblupi-music-ogg is the benchmark's
# reserved artist, never used by the zoo. The tests use them too (the zoo's held-out music, the benchmark).
# chromium and chromium-driver: the app's page is tested in a real headless browser.
[ -n "$extras" ] && debian_packages="$debian_packages wesnoth-1.16-music asc-music drascula-music \
  hyperrogue-music nexuiz-music ufoai-music planetblupi-music-ogg chromium chromium-driver"
missing=""
for package in $debian_packages; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup.sh: please install the Debian packages:$missing (MIDI rendering needs them)" >&2
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".${extras}"
# Basic Pitch's ONNX note transcriber (benchmark measures and their tests); --no-deps because its
# wheel pins TensorFlow, which the ONNX model does not need.
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q --no-deps basic-pitch==0.4.0
fi
