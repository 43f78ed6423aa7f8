#!/usr/bin/env python3
"""Sequential requests for failure drills (scripts/region-test.sh).

Usage: load-recorder.py URL OUT STOPFILE
POSTs to URL (2 s timeout each) one after another until STOPFILE exists, and
writes "# start <epoch seconds>" then one line per request to OUT:
"<seconds since start> <status> <region>"
(status 0 and region "-" for a request that failed: refused, timed out,
reset). The body's "region" field names the region that answered.
Summary: load-recorder.py --summary OUT MARK [REGION]
MARK is an epoch time (date +%s.%N when the drill began); prints
"requests failed first_failure_s all_region_after_s": requests after MARK,
those that failed, and the seconds after MARK from which every answer came
from REGION (-1 when the last one did not).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request


def record(url, out, stop):
    t0 = time.monotonic()
    with open(out, "w", buffering=1) as f:
        f.write("# start %.3f\n" % (time.time() - (time.monotonic() - t0)))
        while not os.path.exists(stop):
            region, status = "-", 0
            try:
                req = urllib.request.Request(url, data=b"x", method="POST")
                with urllib.request.urlopen(req, timeout=2) as r:
                    status = r.status
                    region = json.loads(r.read()).get("region", "-")
            except urllib.error.HTTPError as e:
                status = e.code
            except Exception:
                status = 0
            f.write("%.3f %d %s\n" % (time.monotonic() - t0, status, region))
            time.sleep(0.01)


def summary(out, mark, region):
    rows = []
    start = 0.0
    for line in open(out):
        if line.startswith("# start "):
            start = float(line.split()[2])
            continue
        t, s, r = line.split()
        rows.append((float(t), int(s), r))
    mark -= start
    rows = [row for row in rows if row[0] >= mark]
    failed = [t for t, s, _ in rows if s != 200]
    first = min(failed) - mark if failed else -1
    settled = -1.0
    if region:
        after = [row for row in rows if row[0] >= mark]
        settled = mark
        for t, s, r in after:
            if s != 200 or r != region:
                settled = t
        settled = settled - mark if after and after[-1][2] == region else -1
    print(len(rows), len(failed), "%.2f" % first, "%.2f" % settled)


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(sys.argv[2], float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
    else:
        record(sys.argv[1], sys.argv[2], sys.argv[3])
