# shellcheck shell=sh disable=SC2034,SC2154
# Sourced by bench/run.sh and bench/ab.sh: the anchored files of
# ../shared/bench/README.md and how to get one.
#
# FILES: one "label shape type" line per file.
# bench_file LABEL SHAPE TYPE: prints DIR/SHAPE.TYPE.gguf, written first
# (hearth bench --write-shape, weights seed SEED) when DIR lacks it; returns
# 1 when ONLY is set and does not name LABEL. Needs H, dir and SEED.
FILES="qwen2-Q8_0 bench-qwen2-1.5b Q8_0
qwen2-Q4_K_M bench-qwen2-1.5b Q4_K_M
qwen2-F16 bench-qwen2-1.5b F16
moe-Q8_0 bench-deepseek2-moe Q8_0
moe-Q4_K_M bench-deepseek2-moe Q4_K_M"

bench_file() {
    if [ -n "${ONLY:-}" ]; then
        case " $ONLY " in *" $1 "*) ;; *) return 1 ;; esac
    fi
    f="$dir/$2.$3.gguf"
    if [ ! -f "$f" ]; then
        echo "== writing $f" >&2
        "$H" bench --write-shape "$2" "$3" "$f" --seed "$SEED" >&2
    fi
    echo "$f"
}
