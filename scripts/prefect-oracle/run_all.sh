#!/bin/sh
# Rerun the differential harness: shipped-case sanity check, then random cases in
# every mode.  Mismatches (raw + shrunk) land in ./found/; see README.md.
cd "$(dirname "$0")"
./venv/bin/python check_shipped.py | tail -n 1
for spec in "mixed 2" "ooo 5" "proactive 3" "composite 4" "hard 8" "hard 9" "proactive 10" "composite 11" "extra 12" "extra 13"; do
  set -- $spec
  ./venv/bin/python fuzz.py --mode "$1" --seed "$2" --n "${N:-200}" | grep -E "MISMATCH|shrunk|^seed|discarded"
done
