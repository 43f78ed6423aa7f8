#!/usr/bin/env python3
"""Benchmarks `plinth lsp` with a scripted client (docs/editor.md, "Performance").

    bench/lsp_bench.py [BUILD_DIR]        (default: build)

BUILD_DIR must hold `plinth` and `plinth-bench-gen`. Scenarios, each against
a fresh server over stdio, as an editor drives it:

  file5k   one 5,000-line file (1,250 resources): an edit (one character
           typed, an incremental didChange) -> its diagnostics pushed; and
           completion, hover and semantic-token requests in that file.
  ws100k   a 100,000-resource workspace from plinth-bench-gen (BENCH_LARGE,
           default 100000; 0 skips it): the first check after opening a file,
           then edits -> diagnostics, completion, and the server's peak memory.

Latency is from the write of the message to the read of the answer (for
diagnostics: the publishDiagnostics that follows the edit). Prints medians and
95th percentiles as a markdown table. Environment: BENCH_EDITS (default 20),
BENCH_REQUESTS (default 50), BENCH_LARGE.
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, threading, queue, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
BUILD = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
PLINTH = os.path.join(BUILD, "plinth")
GEN = os.path.join(BUILD, "plinth-bench-gen")
EDITS = int(os.environ.get("BENCH_EDITS", "20"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50"))
LARGE = int(os.environ.get("BENCH_LARGE", "100000"))


class Server:
    def __init__(self, root, incremental=True):
        self.p = subprocess.Popen([PLINTH, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.q = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.request("initialize", {"processId": os.getpid(), "rootUri": "file://" + root, "capabilities": {},
                                    "initializationOptions": {"debounceMs": 0, "incremental": incremental}})
        self.notify("initialized", {})

    def _read(self):
        f = self.p.stdout
        while True:
            length = None
            while True:
                line = f.readline()
                if not line:
                    self.q.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                k, v = line.split(b":", 1)
                if k.lower() == b"content-length":
                    length = int(v)
            self.q.put((time.perf_counter(), json.loads(f.read(length))))

    def send(self, m):
        b = json.dumps(m).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
        self.p.stdin.flush()
        return time.perf_counter()

    def notify(self, method, params):
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, pred, timeout=600):
        while True:
            item = self.q.get(timeout=timeout)
            if item is None:
                raise RuntimeError("the server stopped")
            if pred(item[1]):
                return item

    def request(self, method, params):
        self.next_id += 1
        i = self.next_id
        t0 = self.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        t1, m = self.wait(lambda m: m.get("id") == i and "method" not in m)
        if "error" in m:
            raise RuntimeError(f"{method}: {m['error']}")
        return (t1 - t0) * 1000, m["result"]

    def diagnostics_after(self, t0, uri):
        t1, m = self.wait(lambda m: m.get("method") == "$/plinth/checked")
        return (t1 - t0) * 1000

    def peak_rss_mib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0

    def close(self):
        self.request("shutdown", None)
        self.notify("exit", None)
        self.p.wait(timeout=30)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


rows = []


def report(scenario, what, values, target=""):
    rows.append((scenario, what, len(values), statistics.median(values), pct(values, 95), target))


def typing(server, path, text, line_of_edit, scenario, target):
    """Types one character at a time at the end of a comment line: each edit
    is an incremental didChange followed by its diagnostics."""
    uri = "file://" + path
    t0 = server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "plinth", "version": 1,
                                                                 "text": text}})
    report(scenario, "open -> first diagnostics", [server.diagnostics_after(t0, uri)])
    lines = text.split("\n")
    col = len(lines[line_of_edit])
    times = []
    for v in range(EDITS):
        change = {"range": {"start": {"line": line_of_edit, "character": col + v},
                            "end": {"line": line_of_edit, "character": col + v}}, "text": "x"}
        t0 = server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": v + 2},
                                                      "contentChanges": [change]})
        times.append(server.diagnostics_after(t0, uri))
    report(scenario, "edit (a character typed in a comment) -> diagnostics", times, target)
    return uri


def file5k(tmp):
    d = os.path.join(tmp, "file5k")
    os.makedirs(d)
    parts = ['# edited by the benchmark', 'region "eu" {}', '']
    for i in range(1249):
        parts += [f'bucket "b{i}" {{', '  region   = region.eu', f'  capacity = {i + 1}GiB', '}']
    text = "\n".join(parts) + "\n"
    assert len(text.split("\n")) >= 5000
    path = os.path.join(d, "main.plinth")
    with open(path, "w") as f:
        f.write(text)
    s = Server(d)
    uri = typing(s, path, text, 0, "5,000-line file", "< 50 ms")
    pos = {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 20}}  # after `region.`
    report("5,000-line file", "completion", [s.request("textDocument/completion", pos)[0] for _ in range(REQUESTS)],
           "< 30 ms")
    report("5,000-line file", "hover", [s.request("textDocument/hover", pos)[0] for _ in range(REQUESTS)])
    report("5,000-line file", "semantic tokens (full)",
           [s.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})[0] for _ in range(10)])
    rows.append(("5,000-line file", "server peak memory (MiB)", 1, s.peak_rss_mib(), s.peak_rss_mib(), ""))
    s.close()


def ws100k(tmp):
    d = os.path.join(tmp, "ws")
    subprocess.run([GEN, f"--resources={LARGE}", f"--out={d}"], check=True, stdout=subprocess.DEVNULL)
    files = sorted(f for f in os.listdir(d) if f.endswith(".plinth"))
    path = os.path.join(d, files[-1])
    with open(path) as f:
        text = f.read()
    label = f"{LARGE:,}-resource workspace"
    t0 = time.perf_counter()
    subprocess.run([PLINTH, "validate", d], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows.append((label, "plinth validate (from scratch, for comparison)", 1, (time.perf_counter() - t0) * 1000,
                 (time.perf_counter() - t0) * 1000, ""))
    s = Server(d)
    text = "# edited by the benchmark\n" + text
    global EDITS
    saved, EDITS = EDITS, max(3, EDITS // 4)
    uri = typing(s, path, text, 0, label, "< 300 ms")
    EDITS = saved
    # An edit that changes a value others read: a bucket's capacity in the
    # first resource file (its file's blocks are evaluated again, and what
    # reads the bucket; the rest is kept).
    first = os.path.join(d, next(f for f in files if f.startswith("resources_")))
    with open(first) as f:
        ftext = f.read()
    furi = "file://" + first
    s.notify("textDocument/didOpen", {"textDocument": {"uri": furi, "languageId": "plinth", "version": 1,
                                                       "text": ftext}})
    s.diagnostics_after(time.perf_counter(), furi)
    flines = ftext.split("\n")
    vline = next(i for i, l in enumerate(flines) if l.lstrip().startswith("capacity"))
    vcol = flines[vline].index("= ") + 2
    old_value = flines[vline][vcol:]
    times = []
    for v in range(max(3, EDITS // 4)):
        new_value = f"{v + 2}GiB"
        change = {"range": {"start": {"line": vline, "character": vcol},
                            "end": {"line": vline, "character": vcol + len(old_value)}}, "text": new_value}
        t0 = s.notify("textDocument/didChange", {"textDocument": {"uri": furi, "version": v + 2},
                                                 "contentChanges": [change]})
        times.append(s.diagnostics_after(t0, furi))
        old_value = new_value
    report(label, "value edit (a capacity others read) -> diagnostics", times)
    lines = text.split("\n")
    line = next(i for i, l in enumerate(lines) if "= " in l and not l.lstrip().startswith("#"))
    col = lines[line].index("= ") + 2
    pos = {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}
    s.request("textDocument/completion", pos)  # the first request indexes the module
    report(label, "completion", [s.request("textDocument/completion", pos)[0] for _ in range(REQUESTS // 5)],
           "< 30 ms")
    rows.append((label, "server peak memory (MiB)", 1, s.peak_rss_mib(), s.peak_rss_mib(), "< 1024"))
    s.close()
    # The same typing with every check a whole one (initializationOptions
    # incremental: false; files are still not parsed again), for the ratio.
    s = Server(d, incremental=False)
    saved, EDITS = EDITS, 3
    typing(s, path, text, 0, label + ", whole checks", "")
    EDITS = saved
    rows.append((label + ", whole checks", "server peak memory (MiB)", 1, s.peak_rss_mib(), s.peak_rss_mib(), ""))
    s.close()


def main():
    for b in (PLINTH, GEN):
        if not os.access(b, os.X_OK):
            sys.exit(f"lsp_bench: {b} not found; build it first (cmake --build {BUILD} --target plinth plinth-bench-gen)")
    tmp = tempfile.mkdtemp(prefix="plinth-lsp-bench-")
    try:
        file5k(tmp)
        if LARGE > 0:
            ws100k(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| scenario | measure | n | median ms | p95 ms | target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | {r[5]} |")


if __name__ == "__main__":
    main()
