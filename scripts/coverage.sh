#!/usr/bin/env bash
# Line coverage of the GGUF reader (src/gguf/gguf.c) by the fuzz corpus and
# the tests: the seed corpus fuzz/corpus/gguf, the corpus the fuzzer grew in
# build-fuzz/corpus/gguf (if scripts/fuzz.sh ran), the regressions, the gguf
# unit tests and the crafted-file suite (hearth inspect/run on every case).
#
#   scripts/coverage.sh [FILE...]     default: src/gguf/gguf.c
#
# Builds into build-fuzz-cov with clang -fprofile-instr-generate -fcoverage-mapping,
# merges the profiles with llvm-profdata and prints llvm-cov's report.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then files=("$@"); else files=(src/gguf/gguf.c); fi
export HEARTH_SHARED=${HEARTH_SHARED:-$(cd .. && pwd)/shared}
build=build-fuzz-cov
flags="-fprofile-instr-generate -fcoverage-mapping"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
tests=$(cd tests/gguf && ls test_*.c | sed 's/\.c$//')
cmake --build "$build" --target hearth replay_gguf gen_crafted run_crafted $tests -j "$(nproc)" >/dev/null
prof=$build/profiles
rm -rf "$prof" && mkdir -p "$prof"
export LLVM_PROFILE_FILE=$PWD/$prof/%p-%m.profraw

"$build"/tests/replay_gguf fuzz/regressions/gguf fuzz/corpus/gguf "$build"/../build-fuzz/corpus/gguf \
    2>/dev/null | tail -1
for t in $tests; do "$build"/tests/"$t" >/dev/null 2>&1 || echo "coverage.sh: $t failed" >&2; done
rm -rf "$build"/crafted
"$build"/tests/gen_crafted "$build"/crafted >/dev/null
"$build"/tests/run_crafted "$build"/tools/hearth "$build"/crafted | tail -1

llvm-profdata merge -sparse "$prof"/*.profraw -o "$build"/gguf.profdata
objs=("$build"/tools/hearth -object "$build"/tests/replay_gguf)
for t in $tests; do objs+=(-object "$build/tests/$t"); done
llvm-cov report -instr-profile="$build"/gguf.profdata "${objs[@]}" "${files[@]}"
echo "line-by-line: llvm-cov show -instr-profile=$build/gguf.profdata ${objs[*]} ${files[*]}"
