#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 30s): the
# CI smoke run, or a long hunt with e.g. FUZZTIME=30m. A crash fails the run and
# leaves its input in <package>/testdata/fuzz/<Target>/, where `go test` then
# replays it on every run until it is fixed (commit it with the fix).
# Usage: scripts/fuzz.sh [target-regexp]   (FUZZTIME=30s by default)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-30s}"
only="${1:-.}"
found=0
# Targets are found in the sources, so new ones join the run by themselves.
while read -r file target; do
  [[ "$target" =~ $only ]] || continue
  pkg="./$(dirname "$file")"
  echo "--- $target ($pkg, $fuzztime)"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  found=$((found + 1))
done < <(git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' \
         | sed -E 's/:func (Fuzz[A-Za-z0-9_]*).*/ \1/' | sort)
if [ "$found" -eq 0 ]; then echo "no fuzz target matches $only" >&2; exit 1; fi
echo "fuzz: $found targets, $fuzztime each, no crash"
