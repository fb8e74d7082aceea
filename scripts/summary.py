#!/usr/bin/env python3
"""Prints per-suite results and the final line "N passed, N failed" from the
meson-logs/testlog.json of each build directory given. Exit status 1 if anything failed."""
import json
import sys
from collections import Counter

passed = failed = 0
per_suite = Counter()
failures = []
for build in sys.argv[1:]:
    try:
        with open(f"{build}/meson-logs/testlog.json") as f:
            lines = [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        failed += 1
        failures.append(f"{build}: no testlog.json (tests did not run)")
        continue
    for t in lines:
        ok = t["result"] in ("OK", "EXPECTEDFAIL")
        suites = ",".join(s.split(":")[-1] for s in t.get("suite", []))
        per_suite[(build, suites, ok)] += 1
        if ok:
            passed += 1
        else:
            failed += 1
            failures.append(f"{build}: {t['name']} [{t['result']}]")
for (build, suite, ok), n in sorted(per_suite.items()):
    print(f"  {build:12} {suite:14} {'passed' if ok else 'FAILED'}: {n}")
for f in failures:
    print(f"  FAILED {f}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
