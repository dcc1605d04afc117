#!/usr/bin/env python3
"""Reload latency: SIGHUP -> the new routing state serving.

Starts two demo backends and Strait (release build) with an io.l5d.fs
namer, then 50 times: rewrites linkerd.yaml to route `hello` to the other
backend, sends SIGHUP, and polls (HTTP keep-alive, no sleeps) until `hello`
answers from the new backend. Prints min/median/p90/max of that delay and of
the swap time Strait itself reports in /admin/reload.json (parse + build +
swap). Run from the repository root:  python3 benches/reload.py
"""
import http.client, json, os, re, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait"], cwd=ROOT, check=True)
BIN = os.path.join(ROOT, "target", "release", "strait")
work = tempfile.mkdtemp(prefix="strait-reload-bench.")
procs = []

def backend(name):
    d = os.path.join(work, name); os.makedirs(d)
    open(os.path.join(d, "index.html"), "w").write(name + "\n")
    p = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", d],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(p)
    port = int(re.search(r"port (\d+)", p.stdout.readline()).group(1))
    return port

try:
    disco = os.path.join(work, "disco"); os.makedirs(disco)
    for name in ("a", "b"):
        open(os.path.join(disco, name), "w").write("127.0.0.1 %d\n" % backend(name))
    conf = os.path.join(work, "linkerd.yaml")
    def write(target):
        tmp = conf + ".tmp"
        open(tmp, "w").write("admin: {port: 0}\nnamers:\n- {kind: io.l5d.fs, rootDir: %s}\nrouters:\n"
                             "- protocol: http\n  dtab: /svc/hello => /#/io.l5d.fs/%s;\n  servers: [{port: 0}]\n" % (disco, target))
        os.rename(tmp, conf)
    write("a")
    strait = subprocess.Popen([BIN, "run", "--config", conf], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(strait)
    router = admin = None
    while admin is None:
        line = strait.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m and "router" in line: router = int(m.group(1))
        elif m: admin = int(m.group(1))
    conn = http.client.HTTPConnection("127.0.0.1", router)
    def who():
        conn.request("GET", "/", headers={"Host": "hello"})
        return conn.getresponse().read().decode().strip()
    delays, swaps = [], []
    for i in range(50):
        target = "b" if i % 2 == 0 else "a"
        write(target)
        t0 = time.perf_counter()
        strait.send_signal(signal.SIGHUP)
        while who() != target:
            pass
        delays.append((time.perf_counter() - t0) * 1000)
        a = http.client.HTTPConnection("127.0.0.1", admin); a.request("GET", "/admin/reload.json")
        swaps.append(json.loads(a.getresponse().read())["durationMs"])
    def row(name, xs):
        xs = sorted(xs)
        print("%-34s min %6.2f  median %6.2f  p90 %6.2f  max %6.2f ms" % (name, xs[0], statistics.median(xs), xs[int(len(xs) * 0.9)], xs[-1]))
    print("machine: %d cores, %s" % (os.cpu_count(), open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": ")))
    row("SIGHUP -> new routing serving", delays)
    row("reload (read+parse+build+swap)", swaps)
finally:
    for p in procs: p.kill()
