#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up, build, and chat.
# Until hearth bundles a trained model, `-m demo` makes (once) a small model
# with RANDOM weights, so the whole path runs with no download; it says so.
# Pass your own model instead: scripts/main.sh -m path/to/model.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
if [ $# -eq 0 ]; then set -- -m demo; fi
exec build/tools/hearth chat "$@"
