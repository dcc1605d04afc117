#!/usr/bin/env python3
"""Soak: mixed hostile load on one Strait for a while; nothing may drift.

    cargo build --release && python3 benches/soak.py [--minutes 10] [target/release/strait]

For the whole run: wrk keeps 8 connections of GETs on `hello` (three Python
backends); every 20 s one backend is killed and restarted 3 s later on the
same port; every 10 s the config is rewritten and SIGHUP'd (a reload that
applies); 20 slow clients trickle request bodies until the idle timeout cuts
them, and reconnect; every 2 s a dtab bomb arrives in `l5d-dtab`. Each
minute it prints RSS, open descriptors and the requests so far. At the end:
no panic in Strait's log, RSS and descriptors flat (last minute within 25 %
and 32 descriptors of the first), every `pending`/`connections` gauge back
to 0. Exit status 1 if any of that fails. Not run in CI (it takes minutes).
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BACKEND = r'''
import sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        b = b"ok\n"
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers(); self.wfile.write(b)
    do_POST = do_GET
ThreadingHTTPServer.request_queue_size = 256
s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H); s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
'''

BOMB = "; ".join(
    ["/svc=>/a0;/svc=>/b0"]
    + [f"/a{i}=>/a{i+1} & /b{i+1}; /b{i}=>/a{i+1} & /b{i+1}" for i in range(22)]
    + ["/a22=>/$/inet/127.0.0.1/1"]
)


def backend(port=0):
    p = subprocess.Popen([sys.executable, "-c", BACKEND, str(port)], stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def config(disco, n):
    return (
        f"# reload {n}\nadmin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {disco}\n"
        "routers:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n"
        "  client:\n    responseTimeoutMs: 5000\n"
        "  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableRead5XX\n"
        "  servers:\n  - port: 0\n    dtabOverride: true\n    requestBodyIdleTimeoutMs: 2000\n"
    )


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    minutes = 10.0
    if "--minutes" in sys.argv:
        minutes = float(sys.argv[sys.argv.index("--minutes") + 1])
        args = [a for a in args if a != sys.argv[sys.argv.index("--minutes") + 1]]
    binary = args[0] if args else "target/release/strait"
    tmp = tempfile.mkdtemp()
    disco = os.path.join(tmp, "disco")
    os.mkdir(disco)
    backends = [backend() for _ in range(3)]
    with open(os.path.join(disco, "hello"), "w") as f:
        f.write("".join(f"127.0.0.1 {port}\n" for _, port in backends))
    conf = os.path.join(tmp, "linkerd.yaml")
    with open(conf, "w") as f:
        f.write(config(disco, 0))
    log = open(os.path.join(tmp, "strait.log"), "w")
    strait = subprocess.Popen([binary, "run", "--config", conf], stdout=subprocess.PIPE, stderr=log,
                              text=True, env=dict(os.environ, RUST_LOG="warn"))
    router = admin = None
    for line in strait.stdout:
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
        if m and "router" in line:
            router = int(m.group(2))
        if m and "admin" in line:
            admin = int(m.group(2))
            break
    pid = strait.pid
    stop = threading.Event()
    counts = {"bombs": 0, "bomb_bad": 0, "slow": 0, "reloads": 0, "kills": 0}

    def rss():
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def fds():
        return len(os.listdir(f"/proc/{pid}/fd"))

    def killer():
        while not stop.wait(20):
            i = random.randrange(3)
            p, port = backends[i]
            p.kill(); p.wait()
            counts["kills"] += 1
            if stop.wait(3):
                return
            backends[i] = backend(port)

    def reloader():
        n = 0
        while not stop.wait(10):
            n += 1
            with open(conf, "w") as f:
                f.write(config(disco, n))
            os.kill(pid, signal.SIGHUP)
            counts["reloads"] += 1

    def slow():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", router), timeout=10)
                s.sendall(b"POST / HTTP/1.1\r\nHost: hello\r\nContent-Length: 100\r\n\r\n")
                for _ in range(100):
                    if stop.is_set():
                        break
                    s.sendall(b"x")
                    time.sleep(3)  # past the 2 s idle timeout: cut with 408
            except OSError:
                pass
            counts["slow"] += 1

    def bomber():
        while not stop.wait(2):
            try:
                s = socket.create_connection(("127.0.0.1", router), timeout=10)
                s.sendall(f"GET / HTTP/1.1\r\nHost: hello\r\nl5d-dtab: {BOMB}\r\nConnection: close\r\n\r\n".encode())
                status = s.recv(64).split()[1]
                counts["bombs"] += 1
                if status != b"400":
                    counts["bomb_bad"] += 1
                s.close()
            except (OSError, IndexError):
                counts["bomb_bad"] += 1

    wrk = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{int(minutes * 60)}s", "-H", "Host: hello",
                            f"http://127.0.0.1:{router}/"], stdout=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=f, daemon=True) for f in (killer, reloader, bomber)]
    threads += [threading.Thread(target=slow, daemon=True) for _ in range(20)]
    for t in threads:
        t.start()
    samples = []
    start = time.time()
    while time.time() - start < minutes * 60:
        time.sleep(min(60, minutes * 60 - (time.time() - start)))
        m = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/admin/metrics.json"))
        samples.append((rss(), fds()))
        print(f"{(time.time() - start) / 60:4.1f} min: RSS {samples[-1][0]} KiB, {samples[-1][1]} fds, "
              f"{m.get('rt/out/server/127.0.0.1/%d/requests' % router, 0)} requests, {counts}", flush=True)
    stop.set()
    out, _ = wrk.communicate()
    time.sleep(5)
    m = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/admin/metrics.json"))
    stuck = {k: v for k, v in m.items() if (k.endswith("/pending") or k.endswith("/connections")) and v}
    strait.send_signal(signal.SIGTERM)
    strait.wait(timeout=30)
    for p, _ in backends:
        p.kill()
    log.close()
    with open(os.path.join(tmp, "strait.log")) as f:
        panics = [l for l in f if "panicked" in l]
    print(out.strip().splitlines()[-3:])
    problems = []
    if panics:
        problems.append(f"{len(panics)} panics: {panics[:3]}")
    if stuck:
        problems.append(f"gauges not back to 0: {stuck}")
    if counts["bomb_bad"]:
        problems.append(f"{counts['bomb_bad']} dtab bombs not refused with 400")
    if len(samples) >= 2:
        (r0, f0), (r1, f1) = samples[0], samples[-1]
        if r1 > r0 * 1.25:
            problems.append(f"RSS grew {r0} -> {r1} KiB")
        if f1 > f0 + 32:
            problems.append(f"descriptors grew {f0} -> {f1}")
    print("soak:", "OK" if not problems else "FAILED: " + "; ".join(problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
