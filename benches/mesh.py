#!/usr/bin/env python3
"""Mesh tax per hop: Strait vs nginx vs HAProxy on loopback, in one run.

Run from the repository root:   python3 benches/mesh.py      (about 4 minutes)

One backend (nginx, 1 worker, a static 64-byte file) behind four targets:
  direct    client -> backend                                 (the floor)
  strait    client -> Strait (release, one router, /$/inet dtab) -> backend
  nginx     client -> nginx (1 worker, upstream keepalive 64) -> backend
  haproxy   client -> HAProxy (nbthread 1, http-reuse always) -> backend
and two 10-hop chains (10 Strait processes, 10 nginx processes, each hop
forwarding to the next) compared with direct at the chain rate.

Latency phase (fixed rate, open loop): oha (`oha -q RATE --latency-correction
-c CONNS -z LAT_SECS -w --worker-threads 1`): requests are scheduled at RATE
req/s whatever the target does, and each latency is counted from the request's
scheduled start, so a stall is charged to every request it delays (no
coordinated omission). Percentiles come from oha's JSON (`latencyPercentiles`).
oha is looked up on PATH, in ~/.cargo/bin and /tmp/oha/bin (install it with
`cargo install oha --locked`). Without it (or with LAT_CLIENT=wrk) the phase
falls back to wrk -t1 paced by a Lua `delay()` (each connection sleeps a
random 0..2*CONNS/RATE between responses; a stall delays the next requests on
that connection instead of being charged to them), and the output says so.
Saturation phase: wrk -t1 -c SAT_CONNS, closed loop.
The latency phases are interleaved: ROUNDS rounds, the target order rotated
each round; reported percentiles are the median over rounds.

CPU per request: utime+stime (from /proc/PID/stat, summed over the process and
its children, e.g. nginx master+worker) across a phase, divided by the
requests the client (oha or wrk) completed. Memory: VmRSS and Pss (smaps_rollup) summed the same
way, sampled at the end of each phase; Strait idle RSS is sampled before any load.

Needs nginx, haproxy, wrk (apt-get install -y nginx-light haproxy wrk) and oha (cargo install oha --locked).
Environment: RATE [2000] CONNS [16] LAT_SECS [8] ROUNDS [3] SAT_SECS [6]
SAT_CONNS [64] CHAIN_RATE [1000] CHAIN_HOPS [10] CHAIN_SECS [10] SKIP_CHAIN [0]
JSON_OUT [unset: path to also write raw results as JSON] LAT_CLIENT [oha; wrk forces the Lua-paced fallback]
SKIP_BUILD [0: 1 uses target/release/strait as it is]
STRAIT_THREADS [1]: TOKIO_WORKER_THREADS of the `strait` target and the chain hops
STRAIT_DEFAULT [1]: also measure `strait_mt`, Strait on its default runtime (a worker per core).
STRAIT_WORKERS [unset]: comma-separated worker counts, each also measured as `strait_wN`
(`strait run --workers N`: a current-thread runtime per worker, SO_REUSEPORT listeners).
Every process it starts is stopped by PID at exit.
"""
import json, os, platform, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E = lambda k, d: type(d)(os.environ.get(k, d))
RATE, CONNS, LAT_SECS, ROUNDS = E("RATE", 2000), E("CONNS", 16), E("LAT_SECS", 8), E("ROUNDS", 3)
SAT_SECS, SAT_CONNS = E("SAT_SECS", 6), E("SAT_CONNS", 64)
CHAIN_RATE, CHAIN_HOPS, CHAIN_SECS, SKIP_CHAIN = E("CHAIN_RATE", 1000), E("CHAIN_HOPS", 10), E("CHAIN_SECS", 10), E("SKIP_CHAIN", 0)
WARM_SECS = E("WARM_SECS", 1)
STRAIT_THREADS, STRAIT_DEFAULT = E("STRAIT_THREADS", 1), E("STRAIT_DEFAULT", 1)
STRAIT_WORKERS = [int(w) for w in os.environ.get("STRAIT_WORKERS", "").split(",") if w.strip()]
BODY = b"strait mesh bench: fixed 64-byte body for loopback runs........\n"
assert len(BODY) == 64, len(BODY)
TICK = os.sysconf("SC_CLK_TCK")

def log(*a):
    print("[mesh %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)

for tool in ("nginx", "haproxy", "wrk"):
    if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
        sys.exit("mesh.py: '%s' not found: apt-get install -y nginx-light haproxy wrk" % tool)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

def find_oha():
    for c in (shutil.which("oha"), os.path.expanduser("~/.cargo/bin/oha"), "/tmp/oha/bin/oha"):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None

LAT_CLIENT = os.environ.get("LAT_CLIENT", "oha")
OHA = find_oha() if LAT_CLIENT != "wrk" else None
if OHA:
    OHA_VERSION = subprocess.run([OHA, "--version"], capture_output=True, text=True).stdout.strip()
    LAT_METHOD = "%s -q %d --latency-correction -c %d, 1 worker thread, open loop" % (OHA_VERSION, RATE, CONNS)
else:
    OHA_VERSION = None
    if LAT_CLIENT != "wrk":
        log("oha not found on PATH, in ~/.cargo/bin or /tmp/oha/bin: install it with `cargo install oha --locked`."
            " FALLING BACK to wrk paced by Lua for the fixed-rate phases (no coordinated-omission correction)")
    LAT_METHOD = "wrk -t1 -c%d paced by Lua, NOT oha (%s): no coordinated-omission correction" % (
        CONNS, "LAT_CLIENT=wrk" if LAT_CLIENT == "wrk" else "oha not found; cargo install oha --locked")

if os.environ.get("SKIP_BUILD") != "1":
    log("building strait (release)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait"], cwd=ROOT, check=True)
STRAIT = os.path.join(ROOT, "target", "release", "strait")

work = tempfile.mkdtemp(prefix="strait-mesh-bench.")
os.chmod(work, 0o755)  # nginx workers run as nobody when started by root
procs = []  # Popen objects, stopped in reverse order
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup in `finally`

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(name, argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=open(os.path.join(work, name + ".err"), "w"), **kw)
    procs.append(p)
    return p

def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            log("PID %d ignored TERM; KILL" % p.pid); p.kill(); p.wait()

def wait_ready(port, secs=20):
    end = time.time() + secs
    while time.time() < end:
        try:
            req = urllib.request.Request("http://127.0.0.1:%d/" % port, headers={"Host": "hello"})
            with urllib.request.urlopen(req, timeout=1) as r:
                if r.status == 200 and r.read() == BODY:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit("target on :%d did not answer 200 with the 64-byte body in %ds (see %s)" % (port, secs, work))

# ---------- servers ----------
def nginx_conf(name, listen, body):
    d = os.path.join(work, name); os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    open(conf, "w").write("""daemon off; master_process on; worker_processes 1; pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s; keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:%(listen)d reuseport backlog=4096; %(body)s }
}
""" % dict(d=d, listen=listen, body=body))
    return conf

def start_nginx(name, listen, body):
    return start(name, [NGINX, "-e", os.path.join(work, name, "error.log"), "-p", os.path.join(work, name),
                        "-c", nginx_conf(name, listen, body)], stdout=subprocess.DEVNULL)

def nginx_proxy_body(upstream_port):
    return """location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  } upstream up { server 127.0.0.1:%d; keepalive 64; """ % upstream_port  # closes server, opens upstream

def start_strait(name, listen, next_port, threads=None, workers=None):
    conf = os.path.join(work, name + ".yaml")
    open(conf, "w").write("""admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: %s
  dtab: /svc/hello => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d}]
""" % (name, next_port, listen))
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    env.pop("TOKIO_WORKER_THREADS", None)
    if threads:
        env["TOKIO_WORKER_THREADS"] = str(threads)  # tokio's multi-thread runtime honours it
    extra = ["--workers", str(workers)] if workers else []
    p = start(name, [STRAIT, "run"] + extra + ["--config", conf], stdout=subprocess.PIPE, text=True, env=env)
    admin = None
    end = time.time() + 20
    while time.time() < end:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("strait %s exited: see %s/%s.err" % (name, work, name))
        m = re.search(r"admin listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            admin = int(m.group(1)); break
    return p, admin

# ---------- /proc ----------
def tree(pid):
    out, todo = [], [pid]
    while todo:
        q = todo.pop(); out.append(q)
        try:
            for t in os.listdir("/proc/%d/task" % q):
                try:
                    todo += [int(c) for c in open("/proc/%d/task/%s/children" % (q, t)).read().split()]
                except OSError:
                    pass
        except OSError:
            pass
    return out

def cpu_secs(pids):
    s = 0
    for root in pids:
        for q in tree(root):
            try:
                f = open("/proc/%d/stat" % q).read().rsplit(")", 1)[1].split()
                s += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
            except (OSError, IndexError):
                pass
    return s / TICK

def mem_kib(pids):
    rss = pss = 0
    for root in pids:
        for q in tree(root):
            try:
                m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % q).read()); rss += int(m.group(1)) if m else 0
                m = re.search(r"Pss:\s+(\d+)", open("/proc/%d/smaps_rollup" % q).read()); pss += int(m.group(1)) if m else 0
            except OSError:
                pass
    return rss, pss

# ---------- wrk ----------
LUA = os.path.join(work, "bench.lua")
open(LUA, "w").write("""
local think = tonumber(os.getenv("THINK_MS") or "0")
wrk.headers["Host"] = "hello"
function delay()
  if think <= 0 then return 0 end
  return math.random(0, 2 * think)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.min, latency.max, latency.mean))
end
""")

def wrk(port, secs, conns, rate=None):
    env = dict(os.environ)
    env["THINK_MS"] = str(round(conns * 1000 / rate)) if rate else "0"
    out = subprocess.run(["timeout", str(secs + 15), "wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--timeout", "5s",
                          "-s", LUA, "http://127.0.0.1:%d/" % port], env=env, capture_output=True, text=True)
    m = re.search(r"RESULT (.*)", out.stdout)
    if not m:
        raise SystemExit("wrk failed on :%d: %s %s" % (port, out.stdout, out.stderr))
    n, dur, err, p50, p90, p99, p999, mn, mx, mean = [int(float(x)) for x in m.group(1).split()]
    return dict(requests=n, rps=n / (dur / 1e6), errors=err, p50=p50, p90=p90, p99=p99, p999=p999, max=mx)

def oha(port, secs, conns, rate):
    """oha at a fixed rate, open loop, latency counted from each request's scheduled start."""
    argv = [OHA, "--no-tui", "--output-format", "json", "-q", str(rate), "--latency-correction", "-c", str(conns),
            "-z", "%ds" % secs, "-w", "--worker-threads", "1", "-t", "5s", "-H", "Host: hello",
            "http://127.0.0.1:%d/" % port]
    out = subprocess.run(["timeout", str(secs + 15)] + argv, capture_output=True, text=True)
    try:
        j = json.loads(out.stdout)
    except ValueError:
        raise SystemExit("oha failed on :%d: %s %s" % (port, out.stdout[-2000:], out.stderr[-2000:]))
    codes = {int(k): v for k, v in (j.get("statusCodeDistribution") or {}).items()}
    n = sum(codes.values())
    errors = sum((j.get("errorDistribution") or {}).values()) + sum(v for k, v in codes.items() if not 200 <= k < 400)
    pct = j.get("latencyPercentiles") or {}
    us = lambda k: int(round((pct.get(k) or 0) * 1e6))
    return dict(requests=n, rps=n / j["summary"]["total"], errors=errors, p50=us("p50"), p90=us("p90"),
                p99=us("p99"), p999=us("p99.9"), max=int(round((j["summary"].get("slowest") or 0) * 1e6)))

def fixed_rate(port, secs, conns, rate):
    """The fixed-rate latency client: oha if found, else wrk paced by Lua."""
    return oha(port, secs, conns, rate) if OHA else wrk(port, secs, conns, rate)

def measured(port, pids, secs, conns, rate=None):
    c0 = cpu_secs(pids)
    r = fixed_rate(port, secs, conns, rate) if rate else wrk(port, secs, conns)
    r["cpu_s"] = cpu_secs(pids) - c0
    r["cpu_us_per_req"] = r["cpu_s"] / max(r["requests"], 1) * 1e6
    r["rss_kib"], r["pss_kib"] = mem_kib(pids)
    return r

# ---------- run ----------
results = {}
try:
    load = open("/proc/loadavg").read().split()[:3]
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = dict(cores=os.cpu_count(), cpu=cpu_model, kernel=platform.release(), loadavg_at_start=" ".join(load),
                   nginx=subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip(),
                   haproxy=subprocess.run([HAPROXY, "-v"], capture_output=True, text=True).stdout.splitlines()[0],
                   oha=OHA_VERSION, latency_client=LAT_METHOD)
    log("machine:", machine)

    ports = {k: free_port() for k in ["backend", "nginx", "haproxy", "strait", "strait_mt"] + ["strait_w%d" % w for w in STRAIT_WORKERS]}
    backend_dir = os.path.join(work, "www"); os.makedirs(backend_dir)
    open(os.path.join(backend_dir, "index.html"), "wb").write(BODY)
    backend = start_nginx("backend", ports["backend"], "location / { root %s; index index.html; }" % backend_dir)
    ngx = start_nginx("nginx", ports["nginx"], nginx_proxy_body(ports["backend"]))
    hcfg = os.path.join(work, "haproxy.cfg")
    open(hcfg, "w").write("""global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server s1 127.0.0.1:%d
""" % (ports["haproxy"], ports["backend"]))
    hap = start("haproxy", [HAPROXY, "-db", "-f", hcfg], stdout=subprocess.DEVNULL)
    strait, strait_admin = start_strait("strait", ports["strait"], ports["backend"], STRAIT_THREADS)
    if STRAIT_DEFAULT:
        strait_mt, _ = start_strait("strait_mt", ports["strait_mt"], ports["backend"])
    else:
        del ports["strait_mt"]
    workers = {}
    for w in STRAIT_WORKERS:
        workers[w], _ = start_strait("strait_w%d" % w, ports["strait_w%d" % w], ports["backend"], workers=w)
    for k in ports:
        wait_ready(ports[k])
    time.sleep(1)
    results["strait_idle_after_first_request"] = mem_kib([strait.pid])
    # A fresh Strait that has served nothing, for the idle figure.
    idle, _ = start_strait("strait-idle", free_port(), ports["backend"], STRAIT_THREADS)
    time.sleep(1)
    results["strait_idle"] = mem_kib([idle.pid])
    idle.terminate(); idle.wait(5)
    log("strait idle RSS/PSS KiB:", results["strait_idle"])

    targets = [("direct", ports["backend"], []), ("strait", ports["strait"], [strait.pid]),
               ("nginx", ports["nginx"], [ngx.pid]), ("haproxy", ports["haproxy"], [hap.pid])]
    if STRAIT_DEFAULT:
        targets.insert(2, ("strait_mt", ports["strait_mt"], [strait_mt.pid]))
    for w in STRAIT_WORKERS:
        targets.insert(2, ("strait_w%d" % w, ports["strait_w%d" % w], [workers[w].pid]))
    NAMES = [t[0] for t in targets]
    lat = {t[0]: [] for t in targets}
    for r in range(ROUNDS):
        order = targets[r % len(targets):] + targets[:r % len(targets)]
        for name, port, pids in order:
            fixed_rate(port, WARM_SECS, CONNS, RATE)
            res = measured(port, pids, LAT_SECS, CONNS, RATE)
            lat[name].append(res)
            log("round %d %-8s %6.0f req/s p50 %4d p99 %5d us, cpu %.1f us/req, err %d" % (
                r + 1, name, res["rps"], res["p50"], res["p99"], res["cpu_us_per_req"], res["errors"]))
    sat = {t[0]: [] for t in targets}
    for r in range(2):
        for name, port, pids in (targets if r == 0 else targets[::-1]):
            res = measured(port, pids, SAT_SECS, SAT_CONNS)
            sat[name].append(res)
            log("saturation %-8s %7.0f req/s, cpu %.1f us/req, rss %d KiB, err %d" % (
                name, res["rps"], res["cpu_us_per_req"], res["rss_kib"], res["errors"]))
    results["latency"], results["saturation"] = lat, sat

    chain = {}
    if not SKIP_CHAIN:
        ngx.terminate(); hap.terminate(); ngx.wait(5); hap.wait(5)
        # nginx chain: hop i listens on n_ports[i] and forwards to n_ports[i+1]; last -> backend
        n_ports = [free_port() for _ in range(CHAIN_HOPS)] + [ports["backend"]]
        s_ports = [free_port() for _ in range(CHAIN_HOPS)] + [ports["backend"]]
        n_pids, s_pids = [], []
        for i in range(CHAIN_HOPS):
            n_pids.append(start_nginx("nchain%d" % i, n_ports[i], nginx_proxy_body(n_ports[i + 1])).pid)
            s_pids.append(start_strait("schain%d" % i, s_ports[i], s_ports[i + 1], STRAIT_THREADS)[0].pid)
        wait_ready(n_ports[0]); wait_ready(s_ports[0])
        for name, port, pids in (("direct", ports["backend"], []), ("strait_chain", s_ports[0], s_pids),
                                 ("nginx_chain", n_ports[0], n_pids), ("direct", ports["backend"], [])):
            fixed_rate(port, WARM_SECS, CONNS, CHAIN_RATE)
            res = measured(port, pids, CHAIN_SECS, CONNS, CHAIN_RATE)
            chain.setdefault(name, []).append(res)
            log("chain %-12s %6.0f req/s p50 %5d p99 %5d us, cpu %.1f us/req, rss %d KiB" % (
                name, res["rps"], res["p50"], res["p99"], res["cpu_us_per_req"], res["rss_kib"]))
    results["chain"] = chain
    results["loadavg_at_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
finally:
    stop_all()
    if os.environ.get("KEEP_WORKDIR") != "1":
        shutil.rmtree(work, ignore_errors=True)

# ---------- report ----------
med = lambda rs, k: statistics.median(r[k] for r in rs)
print()
print("Machine: %d cores, %s, Linux %s; %s; %s; %s" % (machine["cores"], machine["cpu"], machine["kernel"], machine["nginx"],
      machine["haproxy"], machine["oha"] or ("oha not used" if LAT_CLIENT == "wrk" else "oha NOT FOUND")))
print("Load average at start %s, at end %s (other work on the machine inflates every figure alike)." % (
    machine["loadavg_at_start"], results["loadavg_at_end"]))
print("strait = Strait with TOKIO_WORKER_THREADS=%d (one worker, like nginx and HAProxy); strait_mt = Strait's default runtime (one worker per core)" % STRAIT_THREADS)
print("Strait idle (fresh process, no request served): RSS %.1f MiB, PSS %.1f MiB" % (
    results["strait_idle"][0] / 1024, results["strait_idle"][1] / 1024))
print()
print("Latency at a fixed %d req/s (%s; %d rounds x %ds interleaved, median of rounds), microseconds" % (
    RATE, LAT_METHOD, ROUNDS, LAT_SECS))
print("| target | req/s | p50 | p90 | p99 | p99.9 | added p50 | added p99 | CPU us/req | RSS MiB | PSS MiB | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
d = lat["direct"]
added = {}
for name in NAMES:
    rs = lat[name]
    a50, a99 = med(rs, "p50") - med(d, "p50"), med(rs, "p99") - med(d, "p99")
    added[name] = (a50, a99)
    print("| %s | %.0f | %d | %d | %d | %d | %+d | %+d | %s | %s | %s | %d |" % (
        name, med(rs, "rps"), med(rs, "p50"), med(rs, "p90"), med(rs, "p99"), med(rs, "p999"), a50, a99,
        "-" if name == "direct" else "%.1f" % med(rs, "cpu_us_per_req"),
        "-" if name == "direct" else "%.1f" % (med(rs, "rss_kib") / 1024),
        "-" if name == "direct" else "%.1f" % (med(rs, "pss_kib") / 1024), sum(r["errors"] for r in rs)))
print()
print("Saturation (wrk -t1 -c%d, %ds, 2 interleaved rounds, median)" % (SAT_CONNS, SAT_SECS))
print("| target | req/s | CPU us/req | RSS MiB | errors |")
print("|---|---|---|---|---|")
for name in NAMES:
    rs = sat[name]
    print("| %s | %.0f | %s | %s | %d |" % (name, med(rs, "rps"),
          "-" if name == "direct" else "%.1f" % med(rs, "cpu_us_per_req"),
          "-" if name == "direct" else "%.1f" % (med(rs, "rss_kib") / 1024), sum(r["errors"] for r in rs)))
if chain:
    print()
    print("%d-hop chain at a fixed %d req/s (%ds each, %s; direct measured before and after)" % (
        CHAIN_HOPS, CHAIN_RATE, CHAIN_SECS, "oha -q --latency-correction" if OHA else "wrk paced by Lua, not oha"))
    print("| target | req/s | p50 | p99 | added p50 | added p50 per hop | CPU us/req (all hops) | RSS MiB (all hops) |")
    print("|---|---|---|---|---|---|---|---|")
    cd = chain["direct"]
    for name in ("direct", "strait_chain", "nginx_chain"):
        rs = chain[name]
        a = med(rs, "p50") - med(cd, "p50")
        print("| %s | %.0f | %d | %d | %+d | %+.0f | %s | %s |" % (name, med(rs, "rps"), med(rs, "p50"), med(rs, "p99"), a,
              a / CHAIN_HOPS, "-" if name == "direct" else "%.1f" % med(rs, "cpu_us_per_req"),
              "-" if name == "direct" else "%.1f" % (med(rs, "rss_kib") / 1024)))
print()
print("Ratios, Strait vs the better peer in this run (lower is better except throughput)")
print("| measure | Strait | nginx | HAProxy | Strait / best peer | target | met |")
print("|---|---|---|---|---|---|---|")
def row(label, s, n, h, higher_better, target, fmt="%.0f"):
    best = max(n, h) if higher_better else min(n, h)
    ratio = s / best if best else float("inf")
    ok = ratio >= target if higher_better else ratio <= target
    print("| %s | %s | %s | %s | %.2f | %s %.1f | %s |" % (label, fmt % s, fmt % n, fmt % h, ratio,
          ">=" if higher_better else "<=", target, "yes" if ok else "NO"))
row("added p50 at %d req/s (us)" % RATE, added["strait"][0], added["nginx"][0], added["haproxy"][0], False, 0.8)
row("added p99 at %d req/s (us)" % RATE, added["strait"][1], added["nginx"][1], added["haproxy"][1], False, 0.8)
if STRAIT_DEFAULT:
    row("strait_mt added p50 (us)", added["strait_mt"][0], added["nginx"][0], added["haproxy"][0], False, 0.8)
    row("strait_mt added p99 (us)", added["strait_mt"][1], added["nginx"][1], added["haproxy"][1], False, 0.8)
row("CPU per request, saturated (us)", med(sat["strait"], "cpu_us_per_req"), med(sat["nginx"], "cpu_us_per_req"),
    med(sat["haproxy"], "cpu_us_per_req"), False, 1.0, "%.1f")
row("saturation throughput (req/s)", med(sat["strait"], "rps"), med(sat["nginx"], "rps"), med(sat["haproxy"], "rps"), True, 1.0)
if STRAIT_DEFAULT:
    row("strait_mt CPU per request (us)", med(sat["strait_mt"], "cpu_us_per_req"), med(sat["nginx"], "cpu_us_per_req"),
        med(sat["haproxy"], "cpu_us_per_req"), False, 1.0, "%.1f")
    row("strait_mt saturation (req/s)", med(sat["strait_mt"], "rps"), med(sat["nginx"], "rps"), med(sat["haproxy"], "rps"), True, 1.0)
if chain:
    s_add = med(chain["strait_chain"], "p50") - med(chain["direct"], "p50")
    n_add = med(chain["nginx_chain"], "p50") - med(chain["direct"], "p50")
    print("| %d-hop added p50 (us) | %d | %d | - | %.2f vs nginx | Strait <= 500 us | %s |" % (
        CHAIN_HOPS, s_add, n_add, s_add / n_add if n_add else float("inf"), "yes" if s_add <= 500 else "NO"))
print("| Strait idle RSS (MiB) | %.1f | | | | <= 15 | %s |" % (results["strait_idle"][0] / 1024,
      "yes" if results["strait_idle"][0] <= 15 * 1024 else "NO"))
if os.environ.get("JSON_OUT"):
    json.dump(dict(machine=machine, **results), open(os.environ["JSON_OUT"], "w"), indent=1)
