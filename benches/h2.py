#!/usr/bin/env python3
"""h2 and gRPC: Strait's h2 router vs nginx `grpc_pass` on loopback, in one run,
and per-request spread vs a connection-level balancer.

Run from the repository root:
    python3 benches/h2.py [STRAIT_BINARY]          (about 4 minutes)
With a binary argument nothing is built; without one it builds Strait in release
mode (SKIP_BUILD=1 uses $CARGO_TARGET_DIR/release/strait, default target/, as it is).

Backends: BACKENDS (3) nginx processes, 1 worker each, h2c (`listen ... http2`,
prior knowledge), answering every request with a small gRPC unary reply:
`content-type: application/grpc`, one 5-byte-framed 21-byte message (`return 200`)
and the trailer `grpc-status: 0` (`add_trailer ... always`), after reading the
whole request body (`mirror_request_body on` to an internal 204, then
`empty_gif` refuses the POST with 405 and `error_page 405 =200` answers): a bare
`return 200` answers before the request's DATA arrives, nginx then sends
RST_STREAM(NO_ERROR), and nginx's grpc_pass, having reused the upstream
connection, fails the next request with "upstream sent frame for unknown stream"
(502). A real gRPC server reads the message first. Each also has a
plain-HTTP `stub_status` port: the script reads every backend's request count
before and after a phase, so "the backends saw N requests" is checked, not assumed
(h2load counts a 200 as a success even when a proxy answers with a gRPC error
in the trailers). Requests are POSTs of a 5-byte-framed 7-byte message with
`content-type: application/grpc` and `te: trailers` to `/bench.Echo/Unary`.

Targets, same backend b1, same client:
  direct      client -> b1                                            (the floor)
  strait      client -> Strait h2 router (TOKIO_WORKER_THREADS=1, io.l5d.fs namer,
              io.l5d.header.path identifier, io.l5d.h2.grpc.default classifier) -> b1
  strait_mt   the same on Strait's default runtime (a worker per core); STRAIT_MT=1 only
  nginx       client -> nginx (1 worker) `grpc_pass grpc://up` (upstream keepalive 64) -> b1

Phases (targets in rotated order each round; ROUNDS rounds; medians and the
min-max over rounds are reported; added latency is taken per round against the
direct figure of the same round):
1. Latency at a fixed rate: `h2load -t1 -c LAT_CONNS -m LAT_STREAMS --rps
   RATE/LAT_CONNS -D LAT_SECS --log-file F`; percentiles from the per-request
   log (time from a request's submission to the end of its response, trailers
   included). One connection: with several, h2load's per-connection timers fire
   in step and send bursts that queue at the backend. h2load paces with a timer but measures from
   submission, not from the scheduled start: a stall longer than LAT_STREAMS
   requests' worth is not charged to the requests it delays (no
   coordinated-omission correction, unlike oha in mesh.py; oha has no gRPC/h2c
   POST with trailers). The proxy's CPU per request at that rate too.
2. Saturation: `h2load -t1 -c SAT_CONNS -m SAT_STREAMS -D SAT_SECS` (closed
   loop; SAT_CONNS x SAT_STREAMS in flight, kept <= 128, nginx's default
   http2_max_concurrent_streams, which caps Strait's one connection per backend):
   req/s and the proxy's CPU per request: utime+stime of the process and its
   children from /proc/PID/stat across the phase / the requests h2load completed.
3. A real gRPC client (only if a Python with grpcio is found: GRPC_PYTHON, else
   target/test-venv/bin/python, which scripts/test makes, else
   $CARGO_TARGET_DIR/test-venv/bin/python): one channel, sequential unary calls
   (`channel.unary_unary` on raw bytes) for GRPC_SECS per target; p50/p99 per
   call, non-OK statuses counted, the proxy's CPU per call. Closed loop, one call
   in flight: the unloaded per-call latency (grpcio's own cost dominates it).
4. Spread: ONE h2 connection (`h2load -c 1 -m 10 -n SPREAD_N`) to a name with 3
   backends through Strait (per-request balancing), nginx grpc_pass (upstream of
   the same 3, round robin), HAProxy `mode tcp` and nginx `stream` (both round
   robin per connection); requests per backend from the stub_status counters.

Needs nginx (with the stream module: Debian's libnginx-mod-stream, optional),
haproxy (optional) and h2load/nghttp (apt-get install -y --no-install-recommends
nginx-light haproxy nghttp2-client libnginx-mod-stream).
Environment: ROUNDS [3] RATE [2000] LAT_CONNS [1] LAT_STREAMS [4] LAT_SECS [8]
SAT_CONNS [4] SAT_STREAMS [16] SAT_SECS [6] GRPC_SECS [4] SPREAD_N [30000]
BACKENDS [3] STRAIT_MT [0] SKIP_STRAIT [0: 1 runs the peers alone, a dry run of
the harness] GRPC_PYTHON [auto] SKIP_BUILD [0] KEEP_WORKDIR [0] JSON_OUT [unset]
Every process it starts is stopped by PID at exit.
"""
import json, os, platform, re, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time
import urllib.request

SERVICE, METHOD = "bench.Echo", "Unary"
REQ_MSG = b"\x0a\x05hello"                      # a protobuf-shaped 7-byte message
REPLY_MSG = b"strait h2 bench reply"            # 21 bytes
frame = lambda m: b"\x00" + struct.pack(">I", len(m)) + m


def grpc_client(target, secs, path):
    """`h2.py --grpc-client 127.0.0.1:PORT SECS PATH`, run by a Python with grpcio: sequential unary calls."""
    import grpc
    ch = grpc.insecure_channel(target)
    call = ch.unary_unary(path)  # no serializers: bytes in, bytes out
    grpc.channel_ready_future(ch).result(timeout=10)
    for _ in range(200):  # warm-up
        try:
            call(REQ_MSG, timeout=5)
        except grpc.RpcError:
            pass
    lat, errors, bad, first = [], {}, 0, None
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < secs:
        s = time.perf_counter()
        try:
            r = call(REQ_MSG, timeout=5)
            lat.append(time.perf_counter() - s)
            if r != REPLY_MSG:
                bad += 1
        except grpc.RpcError as e:
            k = str(e.code()); errors[k] = errors.get(k, 0) + 1; first = first or "%s %s" % (e.code(), e.details())
    wall = time.perf_counter() - t0
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6 if lat else 0
    print(json.dumps(dict(ok=len(lat), rate=len(lat) / wall, errors=errors, bad_body=bad, first_error=first,
                          p50=pct(0.5), p90=pct(0.9), p99=pct(0.99), grpcio=grpc.__version__)))


if len(sys.argv) == 5 and sys.argv[1] == "--grpc-client":
    grpc_client(sys.argv[2], float(sys.argv[3]), sys.argv[4]); sys.exit(0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E = lambda k, d: type(d)(os.environ.get(k, d))
ROUNDS, RATE, LAT_CONNS, LAT_STREAMS, LAT_SECS = E("ROUNDS", 3), E("RATE", 2000), E("LAT_CONNS", 1), E("LAT_STREAMS", 4), E("LAT_SECS", 8)
SAT_CONNS, SAT_STREAMS, SAT_SECS = E("SAT_CONNS", 4), E("SAT_STREAMS", 16), E("SAT_SECS", 6)
GRPC_SECS, SPREAD_N, NBACK = E("GRPC_SECS", 4), E("SPREAD_N", 30000), E("BACKENDS", 3)
STRAIT_MT, SKIP_STRAIT = E("STRAIT_MT", 0), E("SKIP_STRAIT", 0)
TICK = os.sysconf("SC_CLK_TCK")
PATH = "/%s/%s" % (SERVICE, METHOD)
SPREAD_PATH = "/bench.Spread/%s" % METHOD
REPLY = frame(REPLY_MSG)
assert not set(REPLY) & set(b'"$\\{};'), "the reply must be quotable in nginx.conf"


def log(*a):
    print("[h2 %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def which(tool):
    return shutil.which(tool) or next((p for p in ("/usr/sbin/" + tool, "/usr/bin/" + tool) if os.access(p, os.X_OK)), None)


NGINX, HAPROXY, H2LOAD, NGHTTP = which("nginx"), which("haproxy"), which("h2load"), which("nghttp")
for tool, path in (("nginx", NGINX), ("h2load", H2LOAD), ("nghttp", NGHTTP)):
    if not path:
        sys.exit("h2.py: '%s' not found: apt-get install -y --no-install-recommends nginx-light haproxy nghttp2-client"
                 " libnginx-mod-stream" % tool)
STREAM_MOD = next((p for p in ("/usr/lib/nginx/modules/ngx_stream_module.so",) if os.path.exists(p)), None)

if len(sys.argv) > 1:
    STRAIT = os.path.abspath(sys.argv[1])
else:
    STRAIT = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"), "release", "strait")
    if os.environ.get("SKIP_BUILD") != "1" and not SKIP_STRAIT:
        log("building strait (release)")
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait"], cwd=ROOT, check=True)
if not SKIP_STRAIT and not os.access(STRAIT, os.X_OK):
    sys.exit("h2.py: no Strait binary at %s" % STRAIT)


def find_grpc_python():
    cands = [os.environ.get("GRPC_PYTHON"), os.path.join(ROOT, "target", "test-venv", "bin", "python")]
    if os.environ.get("CARGO_TARGET_DIR"):
        cands.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "test-venv", "bin", "python"))
    for c in cands:
        if c and os.access(c, os.X_OK) and subprocess.run([c, "-c", "import grpc"], capture_output=True).returncode == 0:
            return c
    return None


GRPC_PY = find_grpc_python() if os.environ.get("GRPC_PYTHON") != "" else None

work = tempfile.mkdtemp(prefix="strait-h2-bench.")
os.chmod(work, 0o755)  # nginx workers run as nobody when started by root
procs = []
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup in `finally`
REQ_FILE = os.path.join(work, "req.bin")
open(REQ_FILE, "wb").write(frame(REQ_MSG))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def start(name, argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, name + ".err"), "w"), **kw)
    procs.append(p)
    return p


def start_nginx(name, http=b"", main=b""):
    d = os.path.join(work, name); os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    b = lambda s: s.encode() if isinstance(s, str) else s
    open(conf, "wb").write(b"""%(main)s
daemon off; master_process on; worker_processes 1; pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  keepalive_requests 100000000; keepalive_timeout 300s; types {} default_type application/octet-stream;
  %(http)s
}
""" % {b"d": b(d), b"http": b(http), b"main": b(main)})
    t = subprocess.run([NGINX, "-t", "-q", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf], capture_output=True, text=True)
    if t.returncode:
        raise SystemExit("h2.py: bad nginx config for %s: %s" % (name, t.stderr))
    return start(name, [NGINX, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf])


def start_backend(i, port, status_port):
    # keepalive_requests also bounds the requests of one h2 connection in nginx >= 1.19.7 (default 1000).
    http = (b"server { listen 127.0.0.1:%d http2 reuseport backlog=4096;\n"
            b"  location / { mirror /_body; mirror_request_body on; empty_gif; error_page 405 =200 /_reply; }\n"
            b"  location = /_body { internal; return 204; }\n"
            b"  location = /_reply { internal; default_type application/grpc; add_trailer grpc-status 0 always;"
            b" return 200 \"%s\"; } }\n"
            b"server { listen 127.0.0.1:%d; location / { stub_status; } }\n" % (port, REPLY, status_port))
    return start_nginx("b%d" % i, http)


def start_strait(name, port, admin, fsdir, threads):
    conf = os.path.join(work, name + ".yaml")
    open(conf, "w").write("""admin: {ip: 127.0.0.1, port: %d}
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: h2
  label: %s
  identifier: {kind: io.l5d.header.path, segments: 1}
  dtab: /svc => /#/io.l5d.fs;
  service: {responseClassifier: {kind: io.l5d.h2.grpc.default}}
  servers: [{ip: 127.0.0.1, port: %d}]
""" % (admin, fsdir, name, port))
    c = subprocess.run([STRAIT, "check", "--config", conf], capture_output=True, text=True)
    if c.returncode:
        raise SystemExit("h2.py: Strait rejects the h2 router config (SKIP_STRAIT=1 runs the peers alone):\n%s"
                         % (c.stdout + c.stderr).strip())
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    env.pop("TOKIO_WORKER_THREADS", None)
    if threads:
        env["TOKIO_WORKER_THREADS"] = str(threads)
    return start(name, [STRAIT, "run", "--config", conf], env=env)


def grpc_ok(port, path=PATH):
    """One gRPC-shaped call with nghttp: 200, the reply message, trailer grpc-status 0."""
    try:
        r = subprocess.run(["timeout", "5", NGHTTP, "-v", "-d", REQ_FILE, "-H", "content-type: application/grpc",
                            "-H", "te: trailers", "http://127.0.0.1:%d%s" % (port, path)], capture_output=True)
    except OSError as e:
        return False, repr(e)
    out = r.stdout
    ok = (r.returncode == 0 and b":status: 200" in out and b"grpc-status: 0" in out and REPLY_MSG in out)
    return ok, out[-600:]


def wait_ready(name, port, path=PATH, secs=20):
    end, last = time.time() + secs, None
    while time.time() < end:
        ok, last = grpc_ok(port, path)
        if ok:
            return
        time.sleep(0.1)
    raise SystemExit("h2.py: %s on :%d did not answer a gRPC call on %s in %ds (last: %r; logs in %s)"
                     % (name, port, path, secs, last, work))


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
                s += int(f[11]) + int(f[12])  # utime, stime
            except (OSError, IndexError):
                pass
    return s / TICK


def rss_kib(pids):
    rss = 0
    for root in pids:
        for q in tree(root):
            try:
                m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % q).read()); rss += int(m.group(1)) if m else 0
            except OSError:
                pass
    return rss


status_ports = []


def backend_counts():
    """Requests each backend has served (stub_status; the reading itself counts one, subtracted)."""
    out = []
    for p in status_ports:
        txt = urllib.request.urlopen("http://127.0.0.1:%d/" % p, timeout=5).read().decode()
        out.append(int(re.search(r"\n\s*\d+\s+\d+\s+(\d+)", txt).group(1)))
    return out


def counted(fn):
    c0 = backend_counts()
    r = fn()
    c1 = backend_counts()
    return r, [b - a - 1 for a, b in zip(c0, c1)]


def h2load(port, path, conns, streams, secs=None, n=None, rps=None, logf=None):
    argv = [H2LOAD, "-t1", "-c", str(conns), "-m", str(streams), "-d", REQ_FILE,
            "-H", "content-type: application/grpc", "-H", "te: trailers"]
    argv += ["-n", str(n)] if n else ["-D", str(secs)]
    if rps:
        argv += ["--rps", str(rps)]
    if logf:
        argv += ["--log-file", logf]
    argv.append("http://127.0.0.1:%d%s" % (port, path))
    r = subprocess.run(["timeout", str((secs or 60) + 30)] + argv, capture_output=True, text=True)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", r.stdout)
    f = re.search(r"finished in ([\d.]+)(m?s)", r.stdout)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", r.stdout)
    if not (m and f and codes):
        raise SystemExit("h2.py: h2load failed on :%d: %s %s" % (port, r.stdout[-1500:], r.stderr[-1500:]))
    wall = float(f.group(1)) / (1000 if f.group(2) == "ms" else 1)
    done, ok = int(m.group(3)), int(m.group(4))
    res = dict(requests=done, ok=ok, errors=done - ok + int(m.group(5)) + int(m.group(6)) + int(m.group(7)),
               rps=ok / wall if wall else 0, wall=wall)
    if logf:
        lat = []
        for line in open(logf):
            c = line.split("\t")
            if len(c) >= 3 and c[1].startswith("2"):
                lat.append(int(c[2]))
        lat.sort()
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
        res.update(p50=pct(0.5), p90=pct(0.9), p99=pct(0.99), p999=pct(0.999), logged=len(lat))
        os.unlink(logf)
    return res


def measured(pids, fn):
    c0 = cpu_secs(pids)
    (r, seen) = counted(fn)
    r["cpu_s"] = cpu_secs(pids) - c0
    n = r.get("ok") or 1
    r["cpu_us_per_req"] = r["cpu_s"] / n * 1e6
    r["rss_kib"] = rss_kib(pids)
    r["backend_seen"] = seen
    return r


def grpcio_run(port, secs):
    r = subprocess.run(["timeout", str(secs + 60), GRPC_PY, os.path.abspath(__file__), "--grpc-client",
                        "127.0.0.1:%d" % port, str(secs), PATH], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("h2.py: grpcio client failed on :%d: %s" % (port, r.stderr[-1500:]))
    return json.loads(r.stdout)


def busy():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)


med = lambda xs: statistics.median(xs)
lat, sat, grpcr, spread = {}, {}, {}, {}
try:
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    vers = dict(
        nginx=subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip(),
        haproxy=HAPROXY and subprocess.run([HAPROXY, "-v"], capture_output=True, text=True).stdout.splitlines()[0],
        h2load=subprocess.run([H2LOAD, "--version"], capture_output=True, text=True).stdout.strip(),
        grpcio=GRPC_PY and subprocess.run([GRPC_PY, "-c", "import grpc; print(grpc.__version__)"],
                                          capture_output=True, text=True).stdout.strip(),
        strait=None if SKIP_STRAIT else subprocess.run([STRAIT, "--version"], capture_output=True, text=True).stdout.strip())
    machine = "%d cores (nproc), %s, Linux %s, %.0f GiB RAM" % (
        os.cpu_count(), cpu_model, platform.release(),
        int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) / 2**20)
    load0, busy0 = " ".join(open("/proc/loadavg").read().split()[:3]), busy()
    log("machine:", machine, vers)
    log("load average at start:", load0)

    bports = [free_port() for _ in range(NBACK)]
    for i, p in enumerate(bports):
        sp = free_port(); status_ports.append(sp)
        start_backend(i + 1, p, sp)
    for i, p in enumerate(bports):
        wait_ready("backend b%d" % (i + 1), p)

    fsdir = os.path.join(work, "fs"); os.makedirs(fsdir)
    open(os.path.join(fsdir, SERVICE), "w").write("127.0.0.1 %d\n" % bports[0])
    open(os.path.join(fsdir, "bench.Spread"), "w").write("".join("127.0.0.1 %d\n" % p for p in bports))

    ports = {"direct": bports[0]}
    pids = {"direct": []}
    np_, np3 = free_port(), free_port()
    ngx = start_nginx("nginx", """
  upstream up { server 127.0.0.1:%d; keepalive 64; keepalive_requests 100000000; }
  upstream up3 { %s keepalive 64; keepalive_requests 100000000; }
  server { listen 127.0.0.1:%d http2 reuseport backlog=4096; location / { grpc_pass grpc://up; } }
  server { listen 127.0.0.1:%d http2; location / { grpc_pass grpc://up3; } }
""" % (bports[0], " ".join("server 127.0.0.1:%d;" % p for p in bports), np_, np3))
    ports["nginx"], pids["nginx"] = np_, [ngx.pid]
    spread_targets = []  # (name, port, what)
    if not SKIP_STRAIT:
        for name, threads in (("strait", 1), ("strait_mt", None)):
            if name == "strait_mt" and not STRAIT_MT:
                continue
            p = free_port()
            pr = start_strait(name, p, free_port(), fsdir, threads)
            ports[name], pids[name] = p, [pr.pid]
            wait_ready(name, p)
        spread_targets.append(("strait", ports["strait"], "Strait h2 router, per request"))
        wait_ready("strait", ports["strait"], SPREAD_PATH)
    wait_ready("nginx", ports["nginx"])
    wait_ready("nginx grpc_pass x3", np3)
    spread_targets.append(("nginx_grpc_pass", np3, "nginx grpc_pass, upstream round robin"))
    if HAPROXY:
        hp = free_port()
        hcfg = os.path.join(work, "haproxy.cfg")
        open(hcfg, "w").write("""global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  balance roundrobin
%s""" % (hp, "".join("  server b%d 127.0.0.1:%d\n" % (i + 1, p) for i, p in enumerate(bports))))
        start("haproxy", [HAPROXY, "-db", "-f", hcfg])
        wait_ready("haproxy", hp, SPREAD_PATH)
        spread_targets.append(("haproxy_tcp", hp, "HAProxy mode tcp, roundrobin"))
    else:
        log("haproxy not found: its spread row is skipped")
    if STREAM_MOD:
        sp = free_port()
        d = os.path.join(work, "nginx_stream"); os.makedirs(d)
        conf = os.path.join(d, "nginx.conf")
        open(conf, "w").write("""load_module %s;
daemon off; master_process on; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log warn;
events { worker_connections 4096; }
stream { upstream s { %s } server { listen 127.0.0.1:%d; proxy_pass s; } }
""" % (STREAM_MOD, d, d, " ".join("server 127.0.0.1:%d;" % p for p in bports), sp))
        start("nginx_stream", [NGINX, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf])
        wait_ready("nginx stream", sp, SPREAD_PATH)
        spread_targets.append(("nginx_stream", sp, "nginx stream, round robin"))
    else:
        log("nginx stream module not found (libnginx-mod-stream): its spread row is skipped")

    targets = [t for t in ("direct", "strait", "strait_mt", "nginx") if t in ports]
    for r in range(ROUNDS):
        for name in targets[r % len(targets):] + targets[:r % len(targets)]:
            port = ports[name]
            h2load(port, PATH, LAT_CONNS, LAT_STREAMS, secs=1, rps=RATE // LAT_CONNS)  # warm-up
            res = measured(pids[name], lambda: h2load(port, PATH, LAT_CONNS, LAT_STREAMS, secs=LAT_SECS,
                                                       rps=RATE // LAT_CONNS, logf=os.path.join(work, "lat.log")))
            lat.setdefault(name, []).append(res)
            log("round %d latency %-9s %6.0f req/s p50 %4d p90 %4d p99 %5d us, cpu %.1f us/req, errors %d, b1 saw %d" % (
                r + 1, name, res["rps"], res["p50"], res["p90"], res["p99"], res["cpu_us_per_req"], res["errors"],
                res["backend_seen"][0]))
    for r in range(ROUNDS):
        for name in (targets if r % 2 == 0 else targets[::-1]):
            port = ports[name]
            res = measured(pids[name], lambda: h2load(port, PATH, SAT_CONNS, SAT_STREAMS, secs=SAT_SECS))
            sat.setdefault(name, []).append(res)
            log("round %d saturation %-9s %7.0f req/s, cpu %.1f us/req, rss %d KiB, errors %d, b1 saw %d" % (
                r + 1, name, res["rps"], res["cpu_us_per_req"], res["rss_kib"], res["errors"], res["backend_seen"][0]))
    if GRPC_PY:
        for r in range(ROUNDS):
            for name in targets[r % len(targets):] + targets[:r % len(targets)]:
                port = ports[name]
                res = measured(pids[name], lambda: grpcio_run(port, GRPC_SECS))
                grpcr.setdefault(name, []).append(res)
                log("round %d grpcio %-9s %5.0f calls/s p50 %4d p99 %5d us, cpu %.1f us/call, errors %s %s" % (
                    r + 1, name, res["rate"], res["p50"], res["p99"], res["cpu_us_per_req"], res["errors"],
                    res["first_error"] or ""))
    else:
        log("no Python with grpcio (GRPC_PYTHON, target/test-venv): the grpcio phase is skipped")
    for name, port, what in spread_targets:
        res, seen = counted(lambda: h2load(port, SPREAD_PATH, 1, 10, n=SPREAD_N))
        spread[name] = dict(res, per_backend=seen, what=what)
        log("spread %-16s one connection, %d requests ok, per backend %s" % (name, res["ok"], seen))
    b1 = busy()
    load1 = " ".join(open("/proc/loadavg").read().split()[:3])
    busy_pct = 100.0 * (b1[0] - busy0[0]) / max(1, b1[1] - busy0[1])
finally:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            log("PID %d ignored TERM; KILL" % p.pid); p.kill(); p.wait()
    if os.environ.get("KEEP_WORKDIR") != "1":
        shutil.rmtree(work, ignore_errors=True)

# ---------- report ----------
rng = lambda xs, f="%.0f": (f % med(xs)) + (" [" + f % min(xs) + "–" + f % max(xs) + "]" if len(xs) > 1 else "")
print()
print("Machine: " + machine)
print("Tools: %s; %s; %s; grpcio %s; strait: %s" % (vers["nginx"], vers["haproxy"] or "no HAProxy", vers["h2load"],
      vers["grpcio"] or "not used", vers["strait"] or "NOT RUN (SKIP_STRAIT=1)"))
print("Load average at start %s, at end %s; CPU busy %.0f%% over the run (all processes, both cores)." % (load0, load1, busy_pct))
print("strait = Strait h2 router with TOKIO_WORKER_THREADS=1 (one worker, like nginx's one worker process)%s" % (
    "; strait_mt = its default runtime (a worker per core)" if "strait_mt" in ports else ""))
print("Cells: median over %d rounds [min–max over rounds]; added = target - direct in the same round." % ROUNDS)
print()
print("Latency at a fixed %d req/s (h2load -t1 -c %d -m %d --rps %d per connection, %ds, gRPC-shaped POSTs; "
      "per-request log), microseconds" % (RATE, LAT_CONNS, LAT_STREAMS, RATE // LAT_CONNS, LAT_SECS))
print("| target | req/s | p50 | p90 | p99 | p99.9 | added p50 | added p99 | CPU us/req at this rate | errors | backend saw / ok |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
added = {}
for name in targets:
    rs, d = lat[name], lat["direct"]
    a50 = [x["p50"] - y["p50"] for x, y in zip(rs, d)]
    a99 = [x["p99"] - y["p99"] for x, y in zip(rs, d)]
    added[name] = (a50, a99)
    print("| %s | %.0f | %s | %.0f | %s | %.0f | %s | %s | %s | %d | %d / %d |" % (
        name, med([x["rps"] for x in rs]), rng([x["p50"] for x in rs]), med([x["p90"] for x in rs]),
        rng([x["p99"] for x in rs]), med([x["p999"] for x in rs]),
        "-" if name == "direct" else rng(a50, "%+.0f"), "-" if name == "direct" else rng(a99, "%+.0f"),
        "-" if name == "direct" else rng([x["cpu_us_per_req"] for x in rs], "%.1f"),
        sum(x["errors"] for x in rs), sum(x["backend_seen"][0] for x in rs), sum(x["ok"] for x in rs)))
print()
print("Saturation (h2load -t1 -c %d -m %d, %ds, closed loop)" % (SAT_CONNS, SAT_STREAMS, SAT_SECS))
print("| target | req/s | CPU us/req | RSS MiB | errors | backend saw / ok |")
print("|---|---|---|---|---|---|")
for name in targets:
    rs = sat[name]
    print("| %s | %s | %s | %s | %d | %d / %d |" % (
        name, rng([x["rps"] for x in rs]), "-" if name == "direct" else rng([x["cpu_us_per_req"] for x in rs], "%.1f"),
        "-" if name == "direct" else "%.1f" % (med([x["rss_kib"] for x in rs]) / 1024),
        sum(x["errors"] for x in rs), sum(x["backend_seen"][0] for x in rs), sum(x["ok"] for x in rs)))
if grpcr:
    print()
    print("Real gRPC client (grpcio %s, one channel, sequential unary calls, %ds), microseconds" % (vers["grpcio"], GRPC_SECS))
    print("| target | calls/s | p50 | p99 | added p50 | added p99 | CPU us/call | non-OK |")
    print("|---|---|---|---|---|---|---|---|")
    for name in targets:
        rs, d = grpcr[name], grpcr["direct"]
        g50 = [x["p50"] - y["p50"] for x, y in zip(rs, d)]
        g99 = [x["p99"] - y["p99"] for x, y in zip(rs, d)]
        added["grpc_" + name] = (g50, g99)
        print("| %s | %.0f | %s | %s | %s | %s | %s | %s |" % (
            name, med([x["rate"] for x in rs]), rng([x["p50"] for x in rs]), rng([x["p99"] for x in rs]),
            "-" if name == "direct" else rng(g50, "%+.0f"), "-" if name == "direct" else rng(g99, "%+.0f"),
            "-" if name == "direct" else rng([x["cpu_us_per_req"] for x in rs], "%.1f"),
            sum(sum(x["errors"].values()) + x["bad_body"] for x in rs)))
if "strait" in ports:
    print()
    print("Ratios, Strait / nginx grpc_pass (lower is better except throughput): ratio of the medians "
          "[min–max of the per-round ratios, rounds where both figures are > 0]")
    print("| measure | Strait | nginx | Strait / nginx |")
    print("|---|---|---|---|")
    def ratio_row(label, s, n, f="%.0f"):
        rs = [a / b for a, b in zip(s, n) if a > 0 and b > 0]
        r = "%.2f" % (med(s) / med(n)) if med(n) > 0 and med(s) >= 0 else "n/a"
        print("| %s | %s | %s | %s%s |" % (label, rng(s, f), rng(n, f), r,
              " [%.2f–%.2f]" % (min(rs), max(rs)) if len(rs) > 1 else ""))
    ratio_row("added p50 at %d req/s (us)" % RATE, added["strait"][0], added["nginx"][0])
    ratio_row("added p99 at %d req/s (us)" % RATE, added["strait"][1], added["nginx"][1])
    ratio_row("CPU per request at %d req/s (us)" % RATE, [x["cpu_us_per_req"] for x in lat["strait"]],
              [x["cpu_us_per_req"] for x in lat["nginx"]], "%.1f")
    ratio_row("CPU per request, saturated (us)", [x["cpu_us_per_req"] for x in sat["strait"]],
              [x["cpu_us_per_req"] for x in sat["nginx"]], "%.1f")
    ratio_row("saturation throughput (req/s)", [x["rps"] for x in sat["strait"]], [x["rps"] for x in sat["nginx"]])
    if grpcr:
        ratio_row("grpcio added p50 per call (us)", added["grpc_strait"][0], added["grpc_nginx"][0])
        ratio_row("grpcio CPU per call (us)", [x["cpu_us_per_req"] for x in grpcr["strait"]],
                  [x["cpu_us_per_req"] for x in grpcr["nginx"]], "%.1f")
print()
print("Spread: ONE h2 connection (h2load -c 1 -m 10 -n %d) to a name with %d backends; requests each backend served"
      % (SPREAD_N, NBACK))
print("| balancer | " + " | ".join("b%d" % (i + 1) for i in range(NBACK)) + " | busiest backend's share | ok | errors |")
print("|---|" + "---|" * NBACK + "---|---|---|")
for name, s in spread.items():
    tot = sum(s["per_backend"]) or 1
    print("| %s (%s) | %s | %.1f%% | %d | %d |" % (name, s["what"], " | ".join(str(c) for c in s["per_backend"]),
          100.0 * max(s["per_backend"]) / tot, s["ok"], s["errors"]))
bad = [n for n in targets if sum(x["errors"] for x in lat[n] + sat[n])
       or any(x["backend_seen"][0] < x["ok"] for x in lat[n] + sat[n])]
bad += [n for n, rs in grpcr.items() if sum(sum(x["errors"].values()) + x["bad_body"] for x in rs)]
bad += [n for n, s in spread.items() if s["errors"] or sum(s["per_backend"]) != s["ok"]]
if bad:
    print("\nWARNING: errors, or fewer requests at the backend than h2load counted as ok, for: " + ", ".join(sorted(set(bad))))
if os.environ.get("JSON_OUT"):
    json.dump(dict(machine=machine, versions=vers, latency=lat, saturation=sat, grpcio=grpcr, spread=spread),
              open(os.environ["JSON_OUT"], "w"), indent=1)
sys.exit(1 if bad else 0)
