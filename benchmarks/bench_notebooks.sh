#!/bin/bash
# Notebooks' times under nbval (as CI runs them), two commits side by side.
#
#   bash benchmarks/bench_notebooks.sh BEFORE [AFTER] [NOTEBOOK ...]
#
# Clones this repository twice into a temporary folder (BEFORE, and AFTER, default HEAD), and runs
# each notebook (default: 01, 02, 04, 06, the ones that train) with this checkout's .venv as the
# notebook tests do (`pytest notebooks/<nb>`, NBTRAIN_FAST=1 set by notebooks/conftest.py),
# interleaved notebook by notebook so the machine's load falls on both alike, twice: the second
# pass in the other order and each notebook on an empty run cache. Prints one line per run: wall
# seconds of the pytest call, its exit status, the load average and pytest's summary.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
before=${1:?usage: bench_notebooks.sh BEFORE [AFTER] [NOTEBOOK ...]}
after=${2:-HEAD}
shift $(( $# >= 2 ? 2 : 1 ))
notebooks=("$@")
[ ${#notebooks[@]} -eq 0 ] && notebooks=(01_reproduce_round1_instability 02_apply_round2_fixes 04_if_issues_persist 06_sweep)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tag in before after; do
  rev=$before; [ $tag = after ] && rev=$after
  git clone -q "$here" "$work/$tag" && git -C "$work/$tag" checkout -q "$rev" || exit 2
  echo "$tag = $(git -C "$work/$tag" log --oneline -1 | cut -c1-72)"
done
for pass in 1 2; do
  order="before after"; [ $pass = 2 ] && order="after before"
  for nb in "${notebooks[@]}"; do
    nb=${nb%.ipynb}
    for tag in $order; do
      cd "$work/$tag" || exit 2
      [ -f "notebooks/$nb.ipynb" ] || { echo "pass $pass $nb $tag: absent"; continue; }
      [ $pass = 2 ] && rm -rf runs
      start=$(date +%s.%N)
      PYTHONPATH="$work/$tag" "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider "notebooks/$nb.ipynb" > "$work/log" 2>&1
      rc=$?
      secs=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
      echo "pass $pass $nb $tag: $secs s rc=$rc load $(cut -d' ' -f1 /proc/loadavg) $(tail -1 "$work/log")"
    done
  done
done
