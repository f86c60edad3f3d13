#!/usr/bin/env python3
"""Sanity check: the oracle reproduces `expected` of shipped conformance cases
verified_by prefect-run (not tagged divergence)."""
import glob, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import Oracle
from compare import same

o = Oracle()
ok = bad = 0
for fn in sorted(glob.glob(os.path.join(os.environ.get("CASES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/TriplineCoreTests/Fixtures/conformance")), "*.json"))):
    case = json.load(open(fn))
    if case.get("verified_by") != "prefect-run" or "divergence" in case.get("tags", []):
        print("SKIP", os.path.basename(fn)); continue
    got = o.run(case)
    if same(case["expected"], got):
        ok += 1; print("PASS", os.path.basename(fn))
    else:
        bad += 1; print("FAIL", os.path.basename(fn))
        print("   expected:", json.dumps(case["expected"]))
        print("   oracle:  ", json.dumps(got))
print(f"{ok} passed, {bad} failed")
