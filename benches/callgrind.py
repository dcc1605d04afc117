#!/usr/bin/env python3
"""Instructions per proxied request, counted exactly by callgrind.

    python3 benches/callgrind.py target/release/strait [other/strait ...] [nginx]

Each binary runs under `valgrind --tool=callgrind` with one tokio worker
(TOKIO_WORKER_THREADS=1) in front of a Python backend that answers a 64-byte
body; four keep-alive connections send GETs through it. Two runs per binary,
of 1,000 and 4,000 requests: (I(4,000) - I(1,000)) / 3,000 is what one more
request costs, with start-up, shutdown and warm-up cancelled out. Counts of
instructions do not drift with the machine's load, so two binaries compare
within a fraction of a percent.

The argument `nginx` measures nginx (/usr/sbin/nginx: one worker, no master,
`proxy_pass` to the same backend with `keepalive 64`, HTTP/1.1 upstream, no
access log) the same way, in the same run.

`STRAIT_ARGS` is appended to each Strait's command line (for example
`STRAIT_ARGS='--workers 1'`: one current-thread runtime instead of tokio's
work-stealing one).

`CALLGRIND_HEADERS=browser` sends the fields a browser sends with each
request (User-Agent, Accept, Cookie, ... eleven in all) instead of Python's
two (Host, Accept-Encoding).

Each line also gives the event loop's waits per request (calls of
epoll_wait): a server faster than its clients finds nothing to do more
often and waits more, and each wait costs a few hundred instructions, so
two binaries' totals are compared together with their waits. For Strait
the line also gives the instructions outside tokio's waits (the total less
the inclusive cost of the scheduler's park: the event loop's turn, its
timers, the wake-ups it hands out), which does not move with the count of
waits: the figure to compare two Strait binaries by.
"""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BACKEND = r'''
import sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
BODY = b"x" * 64
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
'''


NGINX = """daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Referer": "http://hello/index.html",
    "Cookie": "session=4f2a9c1e8b7d6a5f; theme=dark",
    "Upgrade-Insecure-Requests": "1",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Priority": "u=0, i",
}


def load(port, n, conns=4):
    headers = {"Host": "hello"}
    if os.environ.get("CALLGRIND_HEADERS") == "browser":
        headers.update(BROWSER)

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(k):
            c.request("GET", "/", headers=headers)
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or len(body) != 64:
                raise SystemExit(f"bad response {r.status} {body[:80]!r}")
        c.close()

    ts = [threading.Thread(target=worker, args=(n // conns,)) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


# tokio's scheduler waiting for work: the event loop's turn (epoll_wait,
# the timer wheel) and the wake-ups it hands out, inclusive.
PARK = re.compile(r"tokio::runtime::scheduler::(current_thread|multi_thread::worker)::Context::park(_internal)?('\d+)?$")


def instructions(binary, config, port, n, out_dir):
    out_dir = os.environ.get("CALLGRIND_KEEP") or out_dir
    out = os.path.join(out_dir, f"callgrind.{os.path.basename(binary)}.{n}.{time.time_ns()}")
    env = dict(os.environ, TOKIO_WORKER_THREADS="1", RUST_LOG="warn")
    if binary == "nginx":
        cmd = ["/usr/sbin/nginx", "-p", os.path.dirname(config), "-c", config]
    else:
        cmd = [binary, "run", "--config", config, *os.environ.get("STRAIT_ARGS", "").split()]
    p = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if binary != "nginx":
        for line in p.stdout:
            if "admin listening" in line:
                break
        else:
            raise SystemExit(f"{binary} exited before listening (code {p.wait()})")
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    load(port, n)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    return counts(out)


def counts(out):
    """The total instructions in the callgrind file `out`, the calls of
    epoll_wait, and the instructions inside tokio's park."""
    total, waits, parked, names, caller, callee = None, 0, 0, {}, "", None
    in_park_call = False
    with open(out) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                total = int(m.group(1))
            m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1):
                    callee = names.get(m.group(2), "")
                else:
                    caller = names.get(m.group(2), "")
            elif line.startswith("calls=") and callee:
                if callee.split("@")[0] == "epoll_wait":
                    waits += int(line[6:].split()[0])
                in_park_call = bool(PARK.match(callee)) and not PARK.match(caller)
            elif in_park_call:
                # The line after `calls=`: the call's inclusive cost.
                parked += int(line.split()[1])
                in_park_call = False
    if total is None:
        raise SystemExit(f"no totals in {out}")
    return total, waits, parked


def main():
    binaries = sys.argv[1:] or ["target/release/strait"]
    with tempfile.TemporaryDirectory() as tmp:
        backend = subprocess.Popen([sys.executable, "-c", BACKEND], stdout=subprocess.PIPE, text=True)
        try:
            bport = int(backend.stdout.readline())
            disco = os.path.join(tmp, "disco")
            os.mkdir(disco)
            with open(os.path.join(disco, "hello"), "w") as f:
                f.write(f"127.0.0.1 {bport}\n")
            print(f"machine: {os.cpu_count()} cores; {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}")
            for binary in binaries:
                port, admin = free_port(), free_port()
                if binary == "nginx":
                    config = os.path.join(tmp, "nginx.conf")
                    with open(config, "w") as f:
                        f.write(NGINX.format(dir=tmp, port=port, bport=bport))
                else:
                    config = os.path.join(tmp, "linkerd.yaml")
                    with open(config, "w") as f:
                        f.write(
                            f"admin:\n  port: {admin}\nnamers:\n- kind: io.l5d.fs\n  rootDir: {disco}\n"
                            f"routers:\n- protocol: http\n  dtab: /svc => /#/io.l5d.fs;\n"
                            f"  servers:\n  - port: {port}\n"
                        )
                small, w_small, p_small = instructions(binary, config, port, 1000, tmp)
                large, w_large, p_large = instructions(binary, config, port, 4000, tmp)
                per = (large - small) / 3000
                parked = (p_large - p_small) / 3000
                outside = f"; {per - parked:,.0f} outside tokio's waits" if parked else ""
                print(f"{binary}: {per:,.0f} instructions per request "
                      f"(I(1,000) = {small:,}, I(4,000) = {large:,}); "
                      f"{(w_large - w_small) / 3000:.2f} epoll_wait per request{outside}")
        finally:
            backend.kill()


if __name__ == "__main__":
    main()
