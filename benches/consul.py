#!/usr/bin/env python3
"""Names, Consul propagation and reloads under load: memory per bound name,
the delay from a Consul change to traffic on the new instance, and errors
while reloading.

Run from the repository root:   python3 benches/consul.py     (about 2 minutes)

Builds Strait and the test kit's Consul simulator (`consul-sim`) in release
mode; everything listens on 127.0.0.1, ports are picked by the kernel, and
every process started is stopped at exit.

1. Memory (VmRSS and Pss of the Strait process) idle, then with 1, 100,
   1,000 and 10,000 names bound, one request each over a keep-alive
   connection, for
   - io.l5d.fs: a directory of 10,000 service files;
   - io.l5d.consul: 10,000 services registered in the simulator ("known"),
     `maxWatches: 10000` (one long poll per name in use: a real agent allows
     200 connections per client address unless told otherwise).
   `bindingCache` is raised to 10,000 paths/trees/bounds/clients so that
   every name really stays bound (the default keeps 1,000).
2. Propagation: oha sends a steady 1,000 req/s (open loop) to one Consul
   name; 20 times, a new backend is registered and the time from the
   register call's answer to the first request reaching that backend is
   taken from the backend's own clock (same host, same clock).
3. Reloads under load: oha at 1,000 req/s for 12 s while Strait gets 50
   SIGHUPs, alternating between two configs whose dtabs differ; every
   response must be a 200.
Needs: oha (`cargo install oha --locked`; looked up on PATH, ~/.cargo/bin,
/tmp/oha/bin), nginx (`apt-get install -y nginx-light`) for the steady
instance, python3.
"""
import http.client, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, resource

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_NAMES = int(os.environ.get("N_NAMES", 10000))
STEPS = [s for s in (1, 100, 1000, 10000) if s <= N_NAMES]


def log(*a):
    print("[consul %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def find_oha():
    for c in (shutil.which("oha"), os.path.expanduser("~/.cargo/bin/oha"), "/tmp/oha/bin/oha"):
        if c and os.path.exists(c):
            return c
    sys.exit("consul.py: oha not found: cargo install oha --locked")


OHA = find_oha()
log("building strait and consul-sim (release)")
subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait", "-p", "strait-test-kit", "--bin", "strait", "--bin", "consul-sim"], cwd=ROOT, check=True)
STRAIT = os.path.join(ROOT, "target", "release", "strait")
SIM = os.path.join(ROOT, "target", "release", "consul-sim")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited: 10,000 long polls need fds

work = tempfile.mkdtemp(prefix="strait-consul-bench.")
procs = []
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def start(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw)
    procs.append(p)
    return p


def first_port(p, pattern):
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("process exited before announcing its port")
        m = re.search(pattern, line)
        if m:
            return int(m.group(1))


MARKER = r"""
import sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
seen = [False]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if not seen[0]:
            seen[0] = True
            print("first %.6f" % time.time(), flush=True)
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers(); self.wfile.write(b"ok\n")
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print("port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
"""


def nginx_backend():
    """nginx, 1 worker, answering 200 to everything (the steady instance)."""
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    open(conf, "w").write("worker_processes 1; worker_rlimit_nofile 30000; daemon off; pid %s/nginx.pid; error_log %s/nginx.err;\n"
                          "events { worker_connections 25000; }\n"
                          "http { access_log off; server { listen 127.0.0.1:%d; location / { return 200 'ok\\n'; } } }\n" % (work, work, port))
    p = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


def sim_put(port, path, body=None):
    """One PUT to the simulator on a fresh connection (it closes idle ones)."""
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("PUT", path, body=body)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 200, (path, r.status)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def marker():
    p = start([sys.executable, "-u", "-c", MARKER])
    return p, first_port(p, r"port (\d+)")


def strait(config):
    path = os.path.join(work, "linkerd.yaml")
    open(path, "w").write(config)
    p = start([STRAIT, "run", "--config", path])
    router = admin = None
    while admin is None:
        line = p.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m and "router" in line:
            router = int(m.group(1))
        elif m:
            admin = int(m.group(1))
    return p, router, admin, path


def mem(pid):
    rss = int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1))
    pss = int(re.search(r"Pss:\s+(\d+)", open("/proc/%d/smaps_rollup" % pid).read()).group(1))
    return rss / 1024, pss / 1024


def touch(router, names):
    c = http.client.HTTPConnection("127.0.0.1", router)
    bad = 0
    for n in names:
        c.request("GET", "/", headers={"Host": n})
        r = c.getresponse()
        r.read()
        bad += r.status != 200
    c.close()
    return bad


CACHE = "  bindingCache: {paths: %d, trees: %d, bounds: %d, clients: %d}\n" % ((N_NAMES,) * 4)


def memory_run(kind, config, names):
    p, router, admin, _ = strait(config)
    time.sleep(0.5)
    rows = [(kind, 0) + mem(p.pid) + (0,)]
    done = 0
    for step in STEPS:
        bad = touch(router, names[done:step])
        done = step
        time.sleep(1.0)
        rows.append((kind, step) + mem(p.pid) + (bad,))
        log("%s: %d names bound, RSS %.1f MiB, PSS %.1f MiB, non-200 %d" % rows[-1])
    p.kill(); p.wait()
    return rows


def oha(url, host, rate, secs):
    out = subprocess.run([OHA, "--no-tui", "--output-format", "json", "-q", str(rate), "--latency-correction", "-c", "16",
                          "-w", "-z", "%ds" % secs, "-H", "Host: %s" % host, url], capture_output=True, text=True)
    return json.loads(out.stdout)


def statuses(j):
    return {int(k): v for k, v in j.get("statusCodeDistribution", {}).items()}, sum(j.get("errorDistribution", {}).values())


try:
    machine = "%d cores, %s, Linux %s" % (os.cpu_count(), open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"), os.uname().release)
    load0 = open("/proc/loadavg").read().split()[:3]

    # The backend every name points at (and the steady instance below).
    backend = nginx_backend()

    # --- 1. memory: io.l5d.fs
    disco = os.path.join(work, "disco")
    os.makedirs(disco)
    for i in range(N_NAMES):
        open(os.path.join(disco, "svc-%d" % i), "w").write("127.0.0.1 %d\n" % backend)
    names = ["svc-%d" % i for i in range(N_NAMES)]
    log("memory with io.l5d.fs")
    rows = memory_run("io.l5d.fs", "admin: {ip: 127.0.0.1, port: 0}\nnamers:\n- {kind: io.l5d.fs, rootDir: %s}\nrouters:\n- protocol: http\n"
                      "  dtab: /svc => /#/io.l5d.fs;\n%s  servers: [{port: 0}]\n" % (disco, CACHE), names)

    # --- 1b. memory: io.l5d.consul with N_NAMES services known
    sim = start([SIM, "--port", "0", "--datacenter", "dc1"])
    sim_port = first_port(sim, r"listening on 127\.0\.0\.1:(\d+)")
    log("registering %d services in the simulator" % N_NAMES)
    c = http.client.HTTPConnection("127.0.0.1", sim_port)
    for i in range(N_NAMES):
        body = json.dumps({"Name": "svc-%d" % i, "ID": "svc-%d" % i, "Address": "127.0.0.1", "Port": backend,
                           "Check": {"TTL": "3600s", "Status": "passing"}})
        c.request("PUT", "/v1/agent/service/register", body=body)
        c.getresponse().read()
    consul_cfg = lambda extra="": ("admin: {ip: 127.0.0.1, port: 0}\nnamers:\n- kind: io.l5d.consul\n  host: 127.0.0.1\n  port: %d\n"
                                  "  useHealthCheck: true\n  maxWatches: %d\n%srouters:\n- protocol: http\n  dtab: /svc => /#/io.l5d.consul/dc1;\n"
                                  "%s  servers: [{port: 0}]\n" % (sim_port, N_NAMES, extra, CACHE))
    log("memory with io.l5d.consul")
    rows += memory_run("io.l5d.consul", consul_cfg(), names)

    # --- 2. propagation: Consul change -> first request on the new instance
    log("propagation")
    base = backend
    sim_put(sim_port, "/v1/agent/service/register", json.dumps({"Name": "prop", "ID": "prop-base", "Address": "127.0.0.1", "Port": base}))
    sp, router, admin, _ = strait(consul_cfg())
    touch(router, ["prop"])
    load = {}
    t = threading.Thread(target=lambda: load.update(oha("http://127.0.0.1:%d/" % router, "prop", 1000, 30)))
    t.start()
    time.sleep(2)
    delays = []
    for i in range(20):
        mp, mport = marker()
        body = json.dumps({"Name": "prop", "ID": "prop-%d" % i, "Address": "127.0.0.1", "Port": mport})
        sim_put(sim_port, "/v1/agent/service/register", body)
        t_put = time.time()
        line = mp.stdout.readline()
        delays.append((float(line.split()[1]) - t_put) * 1000)
        sim_put(sim_port, "/v1/agent/service/deregister/prop-%d" % i)
        time.sleep(0.3)
        mp.kill()
        mp.wait()
    t.join()
    prop_status, prop_errors = statuses(load)
    sp.kill(); sp.wait()

    # --- 3. reloads under load
    log("reloads under load")
    for name in ("a", "b"):
        open(os.path.join(disco, name), "w").write("127.0.0.1 %d\n" % backend)
    conf_text = lambda target: ("admin: {ip: 127.0.0.1, port: 0}\nnamers:\n- {kind: io.l5d.fs, rootDir: %s}\nrouters:\n- protocol: http\n"
                                "  dtab: /svc/hello => /#/io.l5d.fs/%s;\n  servers: [{port: 0}]\n" % (disco, target))
    rp, router, admin, path = strait(conf_text("a"))
    load = {}
    t = threading.Thread(target=lambda: load.update(oha("http://127.0.0.1:%d/" % router, "hello", 1000, 12)))
    t.start()
    time.sleep(1)
    swaps = []
    for i in range(50):
        open(path + ".tmp", "w").write(conf_text("b" if i % 2 == 0 else "a"))
        os.rename(path + ".tmp", path)
        rp.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        a = http.client.HTTPConnection("127.0.0.1", admin)
        a.request("GET", "/admin/reload.json")
        swaps.append(json.loads(a.getresponse().read())["durationMs"])
    t.join()
    reload_status, reload_errors = statuses(load)
    load1 = open("/proc/loadavg").read().split()[:3]

    print("Machine: %s; load average %s at start, %s at end" % (machine, " ".join(load0), " ".join(load1)))
    print()
    print("Memory of the Strait process (release), names bound with one request each")
    print("| namer | names bound | RSS MiB | PSS MiB | non-200 |")
    print("|---|---|---|---|---|")
    for kind, n, rss, pss, bad in rows:
        print("| %s | %d | %.1f | %.1f | %d |" % (kind, n, rss, pss, bad))
    print()
    d = sorted(delays)
    print("Consul change -> first request on the new instance (20 registrations under 1,000 req/s)")
    print("| median ms | p90 ms | max ms | load: requests | non-200 | errors |")
    print("|---|---|---|---|---|---|")
    print("| %.1f | %.1f | %.1f | %d | %d | %d |" % (statistics.median(d), d[int(len(d) * 0.9)], d[-1], sum(prop_status.values()),
                                              sum(v for k, v in prop_status.items() if k != 200), prop_errors))
    print()
    s = sorted(swaps)
    print("50 reloads (SIGHUP, alternating dtabs) under 1,000 req/s")
    print("| swap median ms | swap max ms | requests | non-200 | errors |")
    print("|---|---|---|---|---|")
    print("| %.2f | %.2f | %d | %d | %d |" % (statistics.median(s), s[-1], sum(reload_status.values()),
                                         sum(v for k, v in reload_status.items() if k != 200), reload_errors))
finally:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()  # nginx's master stops its worker on SIGTERM, not on SIGKILL
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    shutil.rmtree(work, ignore_errors=True)
