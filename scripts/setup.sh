#!/usr/bin/env bash
# Installs, by name, the Debian 12 packages hearth needs to build and test.
# Safe to run again: it installs only what is missing.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config git
  libpcre2-dev      # pre-tokenizer regexes with Unicode properties
  libjansson-dev    # JSON (messages, golden references, later the server)
  libcurl4-openssl-dev # hearth pull
  libcmocka-dev     # unit tests
  clang llvm libclang-rt-14-dev # libFuzzer harnesses, coverage
  tmux              # terminal test of hearth chat
  python3           # loopback HTTP test server for hearth pull
  clang-format
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user # NEON kernels, cross-built and run under qemu (scripts/test-neon.sh)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
