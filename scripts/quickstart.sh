#!/usr/bin/env bash
# Set up, then the main job on the built-in sample: make the sample dataset, train a small
# VGG19 (width 0.125, 64 px) from scratch for a few epochs, and classify one of its images.
# Each fastfood command is printed before it runs, so you can copy it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
FF="$ROOT/.venv/bin/fastfood"
run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

SAMPLE="${FASTFOOD_SAMPLE:-$ROOT/data/sample}"
RUN="${FASTFOOD_RUN:-$ROOT/runs/quickstart}"
run "$FF" sample-data "$SAMPLE"
run "$FF" train --data "$SAMPLE" --weights none --width 0.125 --image-size 64 \
    --batch-size 32 --epochs 12 --run-dir "$RUN"
IMG="$(sed -n 1p "$SAMPLE/meta/test.txt")"
run "$FF" predict "$SAMPLE/images/$IMG.jpg" --run-dir "$RUN" --top-k 3
printf '\nTry it in a browser, or through the HTTP API (Ctrl-C stops it):\n  %s serve --run-dir %s\n' \
  "$FF" "$RUN" >&2
