#!/usr/bin/env bash
# Instructions per appended event (valgrind callgrind), batch of 100 and one per append.
# Usage: bench/append_ir.sh [SRC]   (SRC: a checkout's src folder; default this one's)
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-src}"
count() {
  PYTHONPATH="$src" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    .venv/bin/python bench/append_ir.py "$1" "$2" 2>&1 | awk '/I *refs/ {gsub(",", "", $4); print $4}'
}
for mode in single:1000 batch:5000; do
  name="${mode%%:*}"; n="${mode##*:}"
  zero=$(count "$name" 0); full=$(count "$name" "$n")
  echo "$name: $(( (full - zero) / n )) instructions per event ($src)"
done
