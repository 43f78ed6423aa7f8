#!/usr/bin/env python3
"""A model-serving stand-in for examples/inference (docs/services.md).

Listens on $PLINTH_HOST:$PORT (set by Plinth for each replica) and answers:
  GET  /healthz   200 "ok"                      (liveness)
  GET  /ready     200 "ready", or 503 while warming up or when $READY_FILE is missing
  POST /predict   200 {"region", "replica", "version", "prediction"}: a deterministic "model" (length of the body)
  GET  /predict   the same for an empty input
  GET  /metrics   Prometheus text: requests served, by path, and a histogram of /predict latency
                  (inference_request_seconds)
Environment: PORT (required), PLINTH_HOST (default 127.0.0.1), PLINTH_REGION, PLINTH_REPLICA,
WARMUP_SECONDS (default 0), MODEL_TOKEN (a secret: only its presence is reported, never its value),
SLOW_FILE (while this file exists, /predict first sleeps as many seconds as it says: latency drills).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.monotonic()
WARMUP = float(os.environ.get("WARMUP_SECONDS", "0"))
REGION = os.environ.get("PLINTH_REGION", "")
REPLICA = os.environ.get("PLINTH_REPLICA", "")
VERSION = os.environ.get("PLINTH_SERVICE_VERSION", "")
READY_FILE = os.environ.get("READY_FILE", "")
SLOW_FILE = os.environ.get("SLOW_FILE", "")
COUNTS = {}
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
LATENCY = [0] * (len(BUCKETS) + 1)  # per bucket (not cumulative); the last is +Inf
LATENCY_SUM = [0.0]
LOCK = threading.Lock()


def slow_seconds():
    if not SLOW_FILE:
        return 0.0
    try:
        with open(SLOW_FILE) as f:
            return max(0.0, min(float(f.read().strip() or 0), 10.0))
    except (OSError, ValueError):
        return 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: one line per request is noise in the replica log
        pass

    def send(self, code, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def count(self, path):
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1

    def predict(self, body):
        started = time.monotonic()
        delay = slow_seconds()
        if delay:
            time.sleep(delay)
        self.count("/predict")
        out = {"region": REGION, "replica": REPLICA, "version": VERSION, "prediction": len(body),
               "authorized": bool(os.environ.get("MODEL_TOKEN"))}
        self.send(200, json.dumps(out) + "\n", "application/json")
        took = time.monotonic() - started
        with LOCK:
            i = next((k for k, b in enumerate(BUCKETS) if took <= b), len(BUCKETS))
            LATENCY[i] += 1
            LATENCY_SUM[0] += took

    def do_GET(self):
        if self.path == "/healthz":
            self.count("/healthz")
            self.send(200, "ok\n")
        elif self.path == "/ready":
            self.count("/ready")
            warm = time.monotonic() - START >= WARMUP
            if warm and (not READY_FILE or os.path.exists(READY_FILE)):
                self.send(200, "ready\n")
            else:
                self.send(503, "not ready\n")
        elif self.path == "/predict":
            self.predict(b"")
        elif self.path == "/metrics":
            with LOCK:
                lines = ["# HELP inference_requests_total Requests served, by path.",
                         "# TYPE inference_requests_total counter"]
                for path, n in sorted(COUNTS.items()):
                    lines.append('inference_requests_total{path="%s"} %d' % (path, n))
                lines += ["# HELP inference_request_seconds Time to answer /predict.",
                          "# TYPE inference_request_seconds histogram"]
                total = 0
                for b, n in zip(BUCKETS + [None], LATENCY):
                    total += n
                    le = "+Inf" if b is None else repr(b)
                    lines.append('inference_request_seconds_bucket{le="%s"} %d' % (le, total))
                lines.append("inference_request_seconds_sum %f" % LATENCY_SUM[0])
                lines.append("inference_request_seconds_count %d" % total)
            self.send(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
        else:
            self.send(404, "not found\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20))
        if self.path == "/predict":
            self.predict(body)
        else:
            self.send(404, "not found\n")


def main():
    port = os.environ.get("PORT")
    if not port:
        print("server.py: PORT is not set", file=sys.stderr)
        return 2
    host = os.environ.get("PLINTH_HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print("server.py: serving on %s:%s (region %s, replica %s)" % (host, port, REGION, REPLICA), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
