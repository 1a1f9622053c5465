#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed time each (default 20s; CI uses 5s).
set -euo pipefail
fuzztime="${1:-20s}"
cd "$(dirname "$0")/.."
found=0
while IFS= read -r file; do
  dir="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    found=$((found + 1))
    echo "== fuzz $dir $target ($fuzztime)"
    # Go's fuzz engine sometimes ends a run that found nothing with "context deadline
    # exceeded" when the time is up while a worker is busy (no failing input is written): that
    # run is repeated once. A real failure writes its input under testdata/fuzz and fails.
    if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 100x "$dir" 2>&1); then
      echo "$out"
      if grep -q "context deadline exceeded" <<<"$out" && ! grep -q "Failing input written" <<<"$out"; then
        echo "== fuzz $dir $target: the engine stopped at its deadline with no failing input; once more"
        go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 100x "$dir"
      else
        exit 1
      fi
    else
      echo "$out"
    fi
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' || true)
if [ "$found" -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
echo "fuzzed $found targets for $fuzztime each"
