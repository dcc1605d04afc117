#!/usr/bin/env python3
"""Names, Consul propagation and reloads: Strait's memory per bound name, the
delay from a Consul change to traffic on the new instance, and reloads under load.

Run from the repository root:   python3 benches/names.py     (about 2.5 minutes)

Builds Strait (`cargo build --release -p strait`) and the test kit's Consul
simulator (`cargo build --release -p strait-test-kit --bin consul-sim`).
Everything listens on 127.0.0.1 on ports the kernel picks; every process it
starts is stopped by PID at exit (Ctrl-C and SIGTERM included) and its
temporary directory is removed. The backend is one nginx (1 worker) with four
`return 200` servers: `keep` (64-byte body, keep-alive), `close` (the same
body, `keepalive_timeout 0`: it closes every connection after the response),
and `a` / `b` (bodies "a", "b") for the reloads.

1. Memory (VmRSS, Pss from smaps_rollup, RssAnon; KiB per name against the
   previous row) of one Strait process, fresh (0 names: the idle figure), then
   after 1, 100, 1,000 and 10,000 names were each sent one request
   (TOUCH_CONNS keep-alive connections in parallel) and SETTLE s of quiet.
   Every row also shows Strait's open fds, its clients (/client_state.json),
   the Consul namer's watches (/namer_state) and the simulator's blocked
   queries (/_sim/stats `blocked_now`). Runs:
   - io.l5d.fs over a directory of N_NAMES files, with the default
     `bindingCache` (1,000 paths: what happens above it), with
     `bindingCache` raised to N_NAMES (every name stays bound), and the
     same against the closing backend (no idle upstream connection per
     client: the difference is what the idle connections cost);
   - io.l5d.consul (`useHealthCheck: true`, dtab `/svc => /#/io.l5d.consul/dc1;`)
     with N_NAMES services registered in the simulator ("known") over the
     agent API (`PUT /v1/agent/service/register`, TTL check passing), and
     1, 100, 1,000 in use with `maxWatches` at its default (100) and at
     1,000; then 1 .. N_NAMES in use with `maxWatches` and `bindingCache`
     at N_NAMES. Each watch is one long poll: a real agent allows 200
     connections per client address (`limits.http_max_conns_per_client`).
     The last run needs a file descriptor per watch plus one per idle
     upstream connection; the soft RLIMIT_NOFILE is raised to the hard
     limit, and when that is below 2*N_NAMES+1000 the run uses the closing
     backend (then Strait holds one fd per watch only), and says so.
2. Propagation: a steady PROP_RATE req/s (oha, open loop) to one Consul name
   with one instance; PROP_ROUNDS times, a new instance (a port of a small
   Python server that prints the time of the first request it receives) is
   registered, and the delay from the register call's answer to that first
   request is taken (same host, same clock); the instance is then
   deregistered.
3. Reloads under load: RELOAD_RATE req/s (oha) to `hello` through Strait
   (io.l5d.fs) while it gets RELOADS SIGHUPs, the config alternating between
   two dtabs (`/svc/hello => /#/io.l5d.fs/a` and `.../b`); after each SIGHUP a
   keep-alive client polls until `b` (or `a`) answers: SIGHUP -> new routing
   serving, as benches/reload.py measures it; /admin/reload.json gives
   Strait's own read+parse+build+swap time. Every load response must be 200.

Needs nginx (apt-get install -y nginx-light) and oha (cargo install oha
--locked; looked up on PATH, in ~/.cargo/bin and /tmp/oha/bin). Without oha
the load falls back to wrk paced by Lua (apt-get install -y wrk), and the
output says so.
Environment: N_NAMES [10000] TOUCH_CONNS [4] SETTLE [0.5] PROP_ROUNDS [20]
PROP_RATE [1000] RELOADS [50] RELOAD_RATE [1000] SKIP_FS_CLOSE [0]
SKIP_BUILD [0] KEEP_WORKDIR [0] JSON_OUT [unset: also write raw results as JSON]
"""
import collections, http.client, json, os, platform, queue, re, resource, shutil, signal, socket, statistics
import subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E = lambda k, d: type(d)(os.environ.get(k, d))
N_NAMES, TOUCH_CONNS, SETTLE = E("N_NAMES", 10000), E("TOUCH_CONNS", 4), E("SETTLE", 0.5)
PROP_ROUNDS, PROP_RATE, RELOADS, RELOAD_RATE = E("PROP_ROUNDS", 20), E("PROP_RATE", 1000), E("RELOADS", 50), E("RELOAD_RATE", 1000)
SKIP_FS_CLOSE = E("SKIP_FS_CLOSE", 0)
STEPS = sorted({s for s in (1, 100, 1000, 10000) if s < N_NAMES} | {N_NAMES})
BODY = b"strait mesh bench: fixed 64-byte body for loopback runs........\n"
assert len(BODY) == 64


def log(*a):
    print("[names %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
if not NGINX:
    sys.exit("names.py: nginx not found: apt-get install -y nginx-light")


def find_oha():
    for c in (shutil.which("oha"), os.path.expanduser("~/.cargo/bin/oha"), "/tmp/oha/bin/oha"):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


OHA = find_oha()
if OHA:
    LOAD_TOOL = subprocess.run([OHA, "--version"], capture_output=True, text=True).stdout.strip() + " -q RATE --latency-correction -c 16"
else:
    if not shutil.which("wrk"):
        sys.exit("names.py: neither oha (cargo install oha --locked) nor wrk (apt-get install -y wrk) found")
    log("oha not found on PATH, in ~/.cargo/bin or /tmp/oha/bin: install it with `cargo install oha --locked`."
        " FALLING BACK to wrk paced by Lua for the load (no coordinated-omission correction)")
    LOAD_TOOL = "wrk -t1 -c16 paced by Lua (oha not found: cargo install oha --locked)"

if os.environ.get("SKIP_BUILD") != "1":
    log("building strait and consul-sim (release)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait-test-kit", "--bin", "consul-sim"], cwd=ROOT, check=True)
STRAIT = os.path.join(ROOT, "target", "release", "strait")
SIM = os.path.join(ROOT, "target", "release", "consul-sim")

# Children inherit the raised soft limit: each Consul watch and each idle upstream connection is an fd.
NOFILE_SOFT0, NOFILE_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_HARD, NOFILE_HARD))

work = tempfile.mkdtemp(prefix="strait-names-bench.")
os.chmod(work, 0o755)  # nginx workers run as nobody when started by root
procs = []  # Popen objects, stopped in reverse order at exit
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup in `finally`


def start(name, argv, stdout=subprocess.DEVNULL, env=None):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=open(os.path.join(work, name + ".err"), "w"),
                         text=True, env=env)
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            log("PID %d ignored TERM; KILL" % p.pid)
            p.kill()
            p.wait()
    if p in procs:
        procs.remove(p)


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            log("PID %d ignored TERM; KILL" % p.pid)
            p.kill()
            p.wait()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, secs=10):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on :%d after %ds (see %s)" % (port, secs, work))


def drain(p):
    """Keeps reading a child's stdout so it never blocks on a full pipe."""
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()


def http_json(port, path, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("%s :%d%s -> %d %s" % (method, port, path, r.status, data[:200]))
    return json.loads(data) if data[:1] in (b"{", b"[") else data.decode()


# ---------- nginx: the backends ----------
def start_nginx():
    ports = {k: free_port() for k in ("keep", "close", "a", "b")}
    d = os.path.join(work, "nginx"); os.makedirs(d)
    body = BODY.decode().strip("\n")
    conf = os.path.join(d, "nginx.conf")
    open(conf, "w").write("""daemon off; master_process on; worker_processes 1; pid %(d)s/nginx.pid;
worker_rlimit_nofile %(nofile)d;
error_log %(d)s/error.log warn;
events { worker_connections %(conns)d; }
http {
  access_log off; default_type text/plain; client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s; keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:%(keep)d reuseport backlog=4096; location / { return 200 "%(body)s\\n"; } }
  server { listen 127.0.0.1:%(close)d reuseport backlog=4096; keepalive_timeout 0; location / { return 200 "%(body)s\\n"; } }
  server { listen 127.0.0.1:%(a)d; location / { return 200 "a\\n"; } }
  server { listen 127.0.0.1:%(b)d; location / { return 200 "b\\n"; } }
}
""" % dict(d=d, nofile=NOFILE_HARD, conns=max(1024, NOFILE_HARD - 200), body=body, **ports))
    start("nginx", [NGINX, "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf])
    for p in ports.values():
        wait_port(p)
    return ports


# ---------- Strait ----------
class Strait:
    def __init__(self, name, config):
        self.path = os.path.join(work, name + ".yaml")
        open(self.path, "w").write(config)
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.p = start(name, [STRAIT, "run", "--config", self.path], stdout=subprocess.PIPE, env=env)
        self.router = self.admin = None
        while self.router is None or self.admin is None:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("strait %s exited: see %s/%s.err" % (name, work, name))
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m and "router" in line:
                self.router = int(m.group(1))
            elif m and "admin" in line:
                self.admin = int(m.group(1))
        drain(self.p)

    def mem(self):
        pid = self.p.pid
        st = open("/proc/%d/status" % pid).read()
        f = lambda k: int(re.search(r"%s:\s+(\d+)" % k, st).group(1))
        pss = int(re.search(r"Pss:\s+(\d+)", open("/proc/%d/smaps_rollup" % pid).read()).group(1))
        return dict(rss=f("VmRSS"), pss=pss, anon=f("RssAnon"), threads=f("Threads"), fds=len(os.listdir("/proc/%d/fd" % pid)))

    def stop(self):
        stop(self.p)


def config(namer, dtab, cache=None):
    bc = "  bindingCache: {paths: %d, trees: %d, bounds: %d, clients: %d}\n" % ((cache,) * 4) if cache else ""
    return ("admin: {ip: 127.0.0.1, port: 0}\nnamers:\n%srouters:\n- protocol: http\n  label: names\n"
            "  dtab: %s\n%s  servers: [{ip: 127.0.0.1, port: 0}]\n" % (namer, dtab, bc))


def fs_namer(root):
    return "- {kind: io.l5d.fs, rootDir: %s}\n" % root


def consul_namer(sim_port, max_watches=None):
    return ("- kind: io.l5d.consul\n  host: 127.0.0.1\n  port: %d\n  useHealthCheck: true\n%s"
            % (sim_port, "  maxWatches: %d\n" % max_watches if max_watches else ""))


def touch(port, names):
    """One GET per name (Host: name), TOUCH_CONNS keep-alive connections in parallel; status counts."""
    counts = collections.Counter()
    lock = threading.Lock()

    def worker(chunk):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local = collections.Counter()
        for n in chunk:
            try:
                c.request("GET", "/", headers={"Host": n})
                r = c.getresponse()
                r.read()
                local[r.status] += 1
            except (OSError, http.client.HTTPException) as e:
                local[type(e).__name__] += 1
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.close()
        with lock:
            counts.update(local)

    ts = [threading.Thread(target=worker, args=(names[i::TOUCH_CONNS],), daemon=True) for i in range(TOUCH_CONNS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts


def memory_run(label, cfg, names, steps, sim_port=None):
    log("memory: %s" % label)
    s = Strait("mem", cfg)
    rows = []
    try:
        time.sleep(SETTLE)
        done, t_touch, codes = 0, 0.0, collections.Counter()
        for step in [0] + steps:
            if step:
                t0 = time.time()
                codes = touch(s.router, names[done:step])
                t_touch = time.time() - t0
                done = step
                time.sleep(SETTLE)
            m = s.mem()  # before any admin request, which allocates too
            row = dict(run=label, names=step, non200=sum(v for k, v in codes.items() if k != 200),
                       codes={str(k): v for k, v in codes.items()}, touch_s=t_touch, **m)
            row["clients"] = len(http_json(s.admin, "/client_state.json"))
            if sim_port:
                ns = http_json(s.admin, "/namer_state/io.l5d.consul.json")
                row["watches"] = ns["stats"]["watches"]
                row["refused"] = ns["stats"]["refused"]
                st = http_json(sim_port, "/_sim/stats")
                row["sim_blocked"], row["sim_conns"] = st["blocked_now"], st["connections_now"]
            if rows:
                prev = rows[-1]
                row["kib_per_name"] = (row["rss"] - prev["rss"]) / max(step - prev["names"], 1)
            rows.append(row)
            log("  %5d names: RSS %.1f MiB, PSS %.1f MiB, fds %d, clients %d%s, non-200 %d (%s), %.1fs" % (
                step, m["rss"] / 1024, m["pss"] / 1024, m["fds"], row["clients"],
                ", watches %d, sim blocked %d" % (row["watches"], row["sim_blocked"]) if sim_port else "",
                row["non200"], dict(codes), t_touch))
    finally:
        s.stop()
    return rows


def register(sim_port, names, port, ttl="3600s"):
    """Registers one instance per name through the agent API, 4 connections in parallel."""
    bad = []

    def worker(chunk):
        c = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=30)
        for n in chunk:
            body = json.dumps({"Name": n, "ID": n, "Address": "127.0.0.1", "Port": port,
                               "Check": {"TTL": ttl, "Status": "passing"}})
            c.request("PUT", "/v1/agent/service/register", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad.append((n, r.status))
        c.close()

    ts = [threading.Thread(target=worker, args=(names[i::4],), daemon=True) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if bad:
        raise SystemExit("registration failed: %s" % bad[:5])


def sim_put(sim_port, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=10)
    c.request("PUT", path, body=body)
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("PUT %s -> %d" % (path, r.status))


# ---------- load ----------
LUA = os.path.join(work, "load.lua")
open(LUA, "w").write("""
local think = tonumber(os.getenv("THINK_MS") or "0")
wrk.headers["Host"] = os.getenv("LOAD_HOST")
function delay() return math.random(0, 2 * think) end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99), latency.max))
end
""")


def load_start(port, host, rate, secs):
    out = open(os.path.join(work, "load-%s-%d.out" % (host, time.time())), "w+")
    url = "http://127.0.0.1:%d/" % port
    if OHA:
        argv = [OHA, "--no-tui", "--output-format", "json", "-q", str(rate), "--latency-correction", "-c", "16",
                "-z", "%ds" % secs, "-w", "--worker-threads", "1", "-t", "5s", "-H", "Host: %s" % host, url]
        env = None
    else:
        argv = ["wrk", "-t1", "-c16", "-d%ds" % secs, "--timeout", "5s", "-s", LUA, url]
        env = dict(os.environ, THINK_MS=str(round(16 * 1000 / rate)), LOAD_HOST=host)
    p = start("load", argv, stdout=out, env=env)
    return p, out, secs


def load_result(h):
    p, out, secs = h
    p.wait(secs + 30)
    procs.remove(p)
    out.seek(0)
    text = out.read()
    if OHA:
        j = json.loads(text)
        codes = {int(k): v for k, v in (j.get("statusCodeDistribution") or {}).items()}
        pct = j.get("latencyPercentiles") or {}
        return dict(requests=sum(codes.values()), rps=sum(codes.values()) / j["summary"]["total"],
                    non200=sum(v for k, v in codes.items() if k != 200), errors=sum((j.get("errorDistribution") or {}).values()),
                    error_kinds=j.get("errorDistribution") or {}, p50_ms=(pct.get("p50") or 0) * 1e3,
                    p99_ms=(pct.get("p99") or 0) * 1e3, max_ms=(j["summary"].get("slowest") or 0) * 1e3)
    m = re.search(r"RESULT (.*)", text)
    n, dur, err, status, p50, p99, mx = [int(float(x)) for x in m.group(1).split()]
    return dict(requests=n, rps=n / (dur / 1e6), non200=status, errors=err, error_kinds={},
                p50_ms=p50 / 1e3, p99_ms=p99 / 1e3, max_ms=mx / 1e3)


MARKER = r"""
import sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
lock, seen = threading.Lock(), set()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        t = time.time()
        port = self.server.server_address[1]
        with lock:
            if port not in seen:
                seen.add(port)
                sys.stdout.write("first %d %.6f\n" % (port, t)); sys.stdout.flush()
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers(); self.wfile.write(b"ok\n")
servers = [ThreadingHTTPServer(("127.0.0.1", 0), H) for _ in range(int(sys.argv[1]))]
for s in servers:
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ports " + " ".join(str(s.server_address[1]) for s in servers), flush=True)
threading.Event().wait()
"""


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


# ---------- run ----------
results = {}
try:
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = dict(cores=os.cpu_count(), cpu=cpu_model, kernel=platform.release(), loadavg_at_start=loadavg(),
                   nginx=subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip(), load_tool=LOAD_TOOL,
                   nofile="%d soft (raised from %d) / %d hard" % (NOFILE_HARD, NOFILE_SOFT0, NOFILE_HARD))
    log("machine:", machine)
    ports = start_nginx()
    names = ["svc-%d" % i for i in range(N_NAMES)]

    # --- 1a. io.l5d.fs
    disco_keep, disco_close = os.path.join(work, "disco-keep"), os.path.join(work, "disco-close")
    for d, port in ((disco_keep, ports["keep"]), (disco_close, ports["close"])):
        os.makedirs(d)
        for n in names:
            open(os.path.join(d, n), "w").write("127.0.0.1 %d\n" % port)
    fs_dtab = "/svc => /#/io.l5d.fs;"
    mem_rows = []
    mem_rows += memory_run("fs, bindingCache default (1000)", config(fs_namer(disco_keep), fs_dtab), names, STEPS)
    mem_rows += memory_run("fs, bindingCache %d" % N_NAMES, config(fs_namer(disco_keep), fs_dtab, N_NAMES), names, STEPS)
    if not SKIP_FS_CLOSE:
        mem_rows += memory_run("fs, bindingCache %d, backend closes" % N_NAMES, config(fs_namer(disco_close), fs_dtab, N_NAMES), names, STEPS)

    # --- 1b. io.l5d.consul, N_NAMES services known
    sim = start("consul-sim", [SIM, "--port", "0", "--datacenter", "dc1"], stdout=subprocess.PIPE)
    line = sim.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        raise SystemExit("consul-sim did not announce its port: %r (see %s)" % (line, work))
    sim_port = int(m.group(1))
    drain(sim)
    log("registering %d services in the simulator" % N_NAMES)
    t0 = time.time()
    register(sim_port, names, ports["keep"])
    results["register_secs"] = time.time() - t0
    c_dtab = "/svc => /#/io.l5d.consul/dc1;"
    small = [s for s in STEPS if s <= 1000]
    mem_rows += memory_run("consul, maxWatches default (100)", config(consul_namer(sim_port), c_dtab), names, small, sim_port)
    mem_rows += memory_run("consul, maxWatches 1000", config(consul_namer(sim_port, 1000), c_dtab), names, small, sim_port)
    need = 2 * N_NAMES + 1000
    big_backend = "keep" if NOFILE_HARD >= need else "close"
    results["big_consul_backend"] = big_backend
    if big_backend == "close":
        log("RLIMIT_NOFILE hard limit %d < %d (a watch and an idle upstream connection per name): the %d-watch run"
            " uses the closing backend" % (NOFILE_HARD, need, N_NAMES))
        register(sim_port, names, ports["close"])
    label = "consul, maxWatches %d, bindingCache %d%s" % (N_NAMES, N_NAMES, ", backend closes" if big_backend == "close" else "")
    mem_rows += memory_run(label, config(consul_namer(sim_port, N_NAMES), c_dtab, N_NAMES), names, STEPS, sim_port)
    results["memory"] = mem_rows

    # --- 2. propagation: Consul change -> first request on the new instance
    log("propagation: %d registrations under %d req/s" % (PROP_ROUNDS, PROP_RATE))
    sim_put(sim_port, "/v1/agent/service/register", json.dumps(
        {"Name": "prop", "ID": "prop-base", "Address": "127.0.0.1", "Port": ports["keep"], "Check": {"TTL": "3600s", "Status": "passing"}}))
    marker = start("marker", [sys.executable, "-u", "-c", MARKER, str(PROP_ROUNDS)], stdout=subprocess.PIPE)
    mports = [int(x) for x in marker.stdout.readline().split()[1:]]
    firsts = queue.Queue()
    threading.Thread(target=lambda: [firsts.put((int(l.split()[1]), float(l.split()[2]))) for l in marker.stdout
                                     if l.startswith("first ")], daemon=True).start()
    s = Strait("prop", config(consul_namer(sim_port), c_dtab))
    assert touch(s.router, ["prop"]) == {200: 1}
    load = load_start(s.router, "prop", PROP_RATE, int(3 + PROP_ROUNDS * 0.5))
    time.sleep(1.5)
    delays, puts, timeouts = [], [], 0
    for i, mport in enumerate(mports):
        if load[0].poll() is not None:
            log("the load ended before round %d" % (i + 1))
        body = json.dumps({"Name": "prop", "ID": "prop-%d" % i, "Address": "127.0.0.1", "Port": mport,
                           "Check": {"TTL": "3600s", "Status": "passing"}})
        t_send = time.time()
        sim_put(sim_port, "/v1/agent/service/register", body)
        t_put = time.time()
        puts.append((t_put - t_send) * 1000)
        try:
            while True:
                port, t_first = firsts.get(timeout=max(0.01, t_put + 5 - time.time()))
                if port == mport:
                    break
            delays.append((t_first - t_put) * 1000)
        except queue.Empty:
            timeouts += 1
            log("round %d: no request reached the new instance within 5 s" % (i + 1))
        sim_put(sim_port, "/v1/agent/service/deregister/prop-%d" % i)
        time.sleep(0.2)
    results["propagation"] = dict(delays_ms=delays, put_ms=puts, timeouts=timeouts, load=load_result(load))
    log("propagation: median %.1f ms, max %.1f ms, load %s" % (statistics.median(delays) if delays else -1,
                                                              max(delays) if delays else -1, results["propagation"]["load"]))
    s.stop()
    stop(marker)

    # --- 3. reloads under load
    log("reloads: %d SIGHUPs under %d req/s" % (RELOADS, RELOAD_RATE))
    rdisco = os.path.join(work, "disco-reload"); os.makedirs(rdisco)
    for n in ("a", "b"):
        open(os.path.join(rdisco, n), "w").write("127.0.0.1 %d\n" % ports[n])
    rconf = lambda target: config(fs_namer(rdisco), "/svc/hello => /#/io.l5d.fs/%s;" % target)
    s = Strait("reload", rconf("a"))
    poll = http.client.HTTPConnection("127.0.0.1", s.router, timeout=10)

    def who():
        poll.request("GET", "/", headers={"Host": "hello"})
        r = poll.getresponse()
        return r.read().decode().strip()

    assert who() == "a"
    load = load_start(s.router, "hello", RELOAD_RATE, int(3 + RELOADS * 0.2))
    time.sleep(1)
    serve_ms, swap_ms, outcomes, stuck = [], [], collections.Counter(), 0
    for i in range(RELOADS):
        target = "b" if i % 2 == 0 else "a"
        tmp = s.path + ".tmp"
        open(tmp, "w").write(rconf(target))
        os.rename(tmp, s.path)
        t0 = time.perf_counter()
        s.p.send_signal(signal.SIGHUP)
        while who() != target:
            if time.perf_counter() - t0 > 5:
                stuck += 1
                log("reload %d: %s not answering 5 s after SIGHUP" % (i + 1, target))
                break
        else:
            serve_ms.append((time.perf_counter() - t0) * 1000)
        rj = http_json(s.admin, "/admin/reload.json")
        outcomes[rj["result"]] += 1
        swap_ms.append(rj.get("durationMs") or 0)
        time.sleep(0.1)
    results["reload"] = dict(serve_ms=serve_ms, swap_ms=swap_ms, outcomes=dict(outcomes), stuck=stuck, load=load_result(load))
    log("reloads: %s" % {k: v for k, v in results["reload"].items() if k not in ("serve_ms", "swap_ms")})
    poll.close()
    s.stop()
    machine["loadavg_at_end"] = loadavg()
finally:
    stop_all()
    if os.environ.get("KEEP_WORKDIR") != "1":
        shutil.rmtree(work, ignore_errors=True)

# ---------- report ----------
print()
print("Machine: %d cores, %s, Linux %s; %s; load: %s; RLIMIT_NOFILE %s" % (
    machine["cores"], machine["cpu"], machine["kernel"], machine["nginx"], machine["load_tool"], machine["nofile"]))
print("Load average at start %s, at end %s (other work on the machine inflates every figure alike)." % (
    machine["loadavg_at_start"], machine["loadavg_at_end"]))
print()
print("Memory of one Strait process (release, default runtime), names bound with one request each (%d connections),"
      " measured %.1fs after; KiB/name = RSS growth over the previous row / names added" % (TOUCH_CONNS, SETTLE))
print("| run | names in use | RSS MiB | PSS MiB | anon MiB | KiB/name | fds | clients | watches | sim blocked | non-200 | bind s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in results["memory"]:
    print("| %s | %d | %.1f | %.1f | %.1f | %s | %d | %d | %s | %s | %s | %s |" % (
        r["run"], r["names"], r["rss"] / 1024, r["pss"] / 1024, r["anon"] / 1024,
        "%.1f" % r["kib_per_name"] if "kib_per_name" in r else "-", r["fds"], r["clients"],
        r.get("watches", "-"), r.get("sim_blocked", "-"),
        ("%d %s" % (r["non200"], {k: v for k, v in r["codes"].items() if k != "200"})) if r["non200"] else "0",
        "%.1f" % r["touch_s"] if r["names"] else "-"))
print("(%d services registered in %.1fs; 'backend closes' = nginx closes each upstream connection after the response,"
      " so no idle connection per client is kept)" % (N_NAMES, results["register_secs"]))
print()
pr = results["propagation"]
d = pr["delays_ms"]
print("Consul change -> first request on the new instance (%d registrations, %s at %d req/s to the name)" % (PROP_ROUNDS, LOAD_TOOL.replace("RATE", str(PROP_RATE)), PROP_RATE))
print("| median ms | p90 ms | max ms | min ms | no request in 5 s | register call ms (median) | load req/s | load p99 ms | load max ms | non-200 | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
L = pr["load"]
print("| %.1f | %.1f | %.1f | %.1f | %d | %.1f | %.0f | %.2f | %.1f | %d | %d |" % (
    statistics.median(d) if d else float("nan"), pct(d, 0.9), max(d) if d else float("nan"), min(d) if d else float("nan"),
    pr["timeouts"], statistics.median(pr["put_ms"]), L["rps"], L["p99_ms"], L["max_ms"], L["non200"], L["errors"]))
print()
rr = results["reload"]
L = rr["load"]
print("%d reloads (SIGHUP, dtab alternating a/b) under %s at %d req/s" % (RELOADS, LOAD_TOOL.replace("RATE", str(RELOAD_RATE)), RELOAD_RATE))
print("| outcomes | SIGHUP->serving median ms | p90 ms | max ms | swap in Strait median ms | max ms | load requests | load p99 ms | load max ms | non-200 | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print("| %s | %.1f | %.1f | %.1f | %.2f | %.2f | %d | %.2f | %.1f | %d | %d |" % (
    " ".join("%s %d" % kv for kv in sorted(rr["outcomes"].items())) + (", %d never served" % rr["stuck"] if rr["stuck"] else ""),
    statistics.median(rr["serve_ms"]), pct(rr["serve_ms"], 0.9), max(rr["serve_ms"]),
    statistics.median(rr["swap_ms"]), max(rr["swap_ms"]), L["requests"], L["p99_ms"], L["max_ms"], L["non200"], L["errors"]))
if L["error_kinds"]:
    print("load errors: %s" % L["error_kinds"])
print()
mem = results["memory"]
idle = mem[0]
target_row = next((r for r in mem if r["run"] == "consul, maxWatches 1000" and r["names"] == 1000), None)
print("Targets (issue 7)")
print("| target | result | met |")
print("|---|---|---|")
print("| RSS <= 15 MiB idle | %.1f MiB (PSS %.1f) | %s |" % (idle["rss"] / 1024, idle["pss"] / 1024, "yes" if idle["rss"] <= 15 * 1024 else "NO"))
if target_row:
    print("| RSS <= 64 MiB with %d Consul names known, 1,000 in use (maxWatches 1000) | %.1f MiB (PSS %.1f), %d non-200 | %s |" % (
        N_NAMES, target_row["rss"] / 1024, target_row["pss"] / 1024, target_row["non200"],
        "yes" if target_row["rss"] <= 64 * 1024 and not target_row["non200"] else "NO"))
ok = d and max(d) <= 100 and not pr["timeouts"]
print("| Consul change -> traffic on the new instance <= 100 ms | median %.1f, p90 %.1f, max %.1f ms; %d of %d never | %s |" % (
    statistics.median(d) if d else float("nan"), pct(d, 0.9), max(d) if d else float("nan"), pr["timeouts"], PROP_ROUNDS, "yes" if ok else "NO"))
errs = L["non200"] + L["errors"] + rr["stuck"] + sum(v for k, v in rr["outcomes"].items() if k != "applied")
print("| reload swap <= 10 ms with zero errors | swap in Strait max %.2f ms; SIGHUP->serving median %.1f, max %.1f ms; %d failed requests, %d reloads not applied | %s |" % (
    max(rr["swap_ms"]), statistics.median(rr["serve_ms"]), max(rr["serve_ms"]), L["non200"] + L["errors"],
    sum(v for k, v in rr["outcomes"].items() if k != "applied") + rr["stuck"],
    "yes" if max(rr["swap_ms"]) <= 10 and not errs else "NO"))
if os.environ.get("JSON_OUT"):
    json.dump(dict(machine=machine, **results), open(os.environ["JSON_OUT"], "w"), indent=1)
