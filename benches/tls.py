#!/usr/bin/env python3
"""TLS termination: Strait vs nginx on loopback, in one run.

Run from the repository root:   python3 benches/tls.py      (about 3 minutes)

One backend (nginx, 1 worker, a static 64-byte file, plain HTTP) behind:
  nginx_tls / strait_tls   TLS terminated by the proxy, plain HTTP to the backend
  nginx / strait           the same proxies in plaintext (reference)
nginx: 1 worker, `upstream keepalive 64`, `ssl_protocols TLSv1.2 TLSv1.3` (1.22's
default has no 1.3), other TLS settings default (session tickets on, no cache). Strait: one router, TOKIO_WORKER_THREADS=1
(one worker, like nginx), `servers: [{tls: {certPath, keyPath}}]`, rustls defaults
(its in-memory session cache). Both serve the same certificate, issued by a CA
made with `openssl` at start: ECDSA P-256, and RSA 2048 (KEYS=ecdsa,rsa).

1. Handshakes: CLIENTS client processes (Python `ssl`, OpenSSL), each in a loop
   for HS_SECS: connect, TLS handshake (certificate verified against the CA,
   SNI localhost), `GET /` with `Connection: close`, read to EOF (the status and
   the 64-byte body are checked), close. Mode `full`: no session offered, every
   handshake is a full one. Mode `resumed`: each client offers the session (TLS
   1.3 ticket) of its previous connection; the share actually resumed is shown.
   Mode `plain`: the same loop without TLS against the plaintext proxies, so
   "CPU beyond plain" is what the handshake (and TLS on one request) costs.
   wrk is not used here: it resumes sessions on reconnect (TLSv1.2 session
   tickets), so `wrk -H 'Connection: close'` measures abbreviated handshakes only.
   Reported: handshakes/s, the proxy's CPU seconds per 1,000 handshakes
   (utime+stime of the process and its children from /proc/PID/stat) and the
   clients' own. The clients need about as much CPU as the proxy, on the same 2
   cores, so the rate is partly the client's: CPU per handshake is the fairer
   comparison. Targets alternate over ROUNDS rounds; medians are reported.
2. Latency per hop: `wrk -t1 -c1 --latency` keep-alive (closed loop, one
   connection: the unloaded per-request latency), LAT_SECS per target, LAT_ROUNDS
   rounds in rotated order, median of rounds (one connection's latency swings
   with where the scheduler puts client and server: many short rounds). direct = the backend (the floor).

Needs nginx, wrk, openssl (apt-get install -y --no-install-recommends nginx-light wrk openssl).
Environment: CLIENTS [2] HS_SECS [5] ROUNDS [2] LAT_SECS [3] LAT_ROUNDS [4] KEYS [ecdsa,rsa]
SKIP_BUILD [0: 1 uses the release binary as it is] KEEP_WORKDIR [0] JSON_OUT [unset]
The binary is $CARGO_TARGET_DIR/release/strait (default target/). Every process
started is stopped by PID at exit.
"""
import json, os, platform, re, shutil, signal, socket, ssl, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E = lambda k, d: type(d)(os.environ.get(k, d))
CLIENTS, HS_SECS, ROUNDS = E("CLIENTS", 2), E("HS_SECS", 5), E("ROUNDS", 2)
LAT_SECS, LAT_ROUNDS = E("LAT_SECS", 3), E("LAT_ROUNDS", 4)
KEYS = [k for k in E("KEYS", "ecdsa,rsa").split(",") if k]
BODY = b"strait tls bench: fixed 64-byte body for loopback runs.........\n"
assert len(BODY) == 64, len(BODY)
TICK = os.sysconf("SC_CLK_TCK")
REQ = b"GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n"

def log(*a):
    print("[tls %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)

def client(port, secs, mode, ca):
    """One handshake client (run as `tls.py --client ...`): prints a JSON summary."""
    ctx = ssl.create_default_context(cafile=ca) if mode != "plain" else None
    ok = errors = reused = 0
    sess, first_err, t0 = None, None, time.monotonic()
    while time.monotonic() - t0 < secs:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as curl and wrk do
                with (ctx.wrap_socket(raw, server_hostname="localhost", session=sess) if ctx else raw) as s:
                    s.sendall(REQ)
                    data = b""
                    while chunk := s.recv(4096):
                        data += chunk
                    if not (data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\n" + BODY)):
                        raise ValueError("unexpected response %r" % data[:80])
                    ok += 1
                    if ctx:
                        reused += s.session_reused
                        sess = s.session if mode == "resumed" else None
                        proto = "%s %s" % (s.version(), s.cipher()[0])
                    else:
                        proto = "plain TCP"
        except (OSError, ValueError) as e:
            errors += 1; first_err = first_err or repr(e)
    t = os.times()
    print(json.dumps(dict(ok=ok, errors=errors, reused=reused, secs=time.monotonic() - t0,
                          cpu=t.user + t.system, first_error=first_err, proto=ok and proto or None)))

if len(sys.argv) == 6 and sys.argv[1] == "--client":
    client(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]); sys.exit(0)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
for tool, path in (("nginx", NGINX), ("wrk", shutil.which("wrk")), ("openssl", shutil.which("openssl"))):
    if not path:
        sys.exit("tls.py: '%s' not found: apt-get install -y --no-install-recommends nginx-light wrk openssl" % tool)
if os.environ.get("SKIP_BUILD") != "1":
    if not shutil.which("cargo"):
        sys.exit("tls.py: 'cargo' not found (or set SKIP_BUILD=1 with a release build in place)")
    log("building strait (release)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "strait"], cwd=ROOT, check=True)
STRAIT = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"), "release", "strait")
if not os.access(STRAIT, os.X_OK):
    sys.exit("tls.py: no release binary at %s" % STRAIT)

work = tempfile.mkdtemp(prefix="strait-tls-bench.")
os.chmod(work, 0o755)  # nginx workers run as nobody when started by root
procs = []
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup in `finally`

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("tls.py: %s failed: %s" % (" ".join(argv), r.stderr.strip()[-800:]))
    return r.stdout

def start(name, argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, name + ".err"), "w"), **kw)
    procs.append(p)
    return p

def certs(kind):
    """CA + server cert (SAN localhost, 127.0.0.1) of one key type; returns (ca, cert, key) paths."""
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ecdsa" else ["-newkey", "rsa:2048"]
    p = lambda n: os.path.join(work, "%s-%s" % (kind, n))
    run(["openssl", "req", "-x509", "-nodes", *newkey, "-keyout", p("ca.key"), "-out", p("ca.pem"),
         "-days", "2", "-subj", "/CN=strait tls bench CA"])
    run(["openssl", "req", "-nodes", *newkey, "-keyout", p("key.pem"), "-out", p("csr.pem"), "-subj", "/CN=localhost"])
    open(p("ext.cnf"), "w").write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", p("csr.pem"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
         "-CAcreateserial", "-days", "2", "-extfile", p("ext.cnf"), "-out", p("cert.pem")])
    return p("ca.pem"), p("cert.pem"), p("key.pem")

def start_nginx(name, listen, body, tls=None):
    d = os.path.join(work, name); os.makedirs(d)
    ssl_ = " ssl" if tls else ""
    # nginx 1.22's default ssl_protocols lacks TLSv1.3; Strait's default is TLSv1.2 and TLSv1.3.
    tls_conf = "ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3;" % tls[1:] if tls else ""
    conf = os.path.join(d, "nginx.conf")
    open(conf, "w").write("""daemon off; master_process on; worker_processes 1; pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s; keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:%(listen)d%(ssl)s reuseport backlog=4096; %(tls)s %(body)s }
}
""" % dict(d=d, listen=listen, body=body, ssl=ssl_, tls=tls_conf))
    return start(name, [NGINX, "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf])

def nginx_proxy_body(upstream_port):
    return """location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  } upstream up { server 127.0.0.1:%d; keepalive 64; """ % upstream_port  # closes server, opens upstream

def start_strait(name, listen, next_port, tls=None):
    conf = os.path.join(work, name + ".yaml")
    tls_conf = ", tls: {certPath: %s, keyPath: %s}" % tls[1:] if tls else ""
    open(conf, "w").write("""admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: %s
  dtab: /svc/hello => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d%s}]
""" % (free_port(), name, next_port, listen, tls_conf))
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"), TOKIO_WORKER_THREADS="1")
    return start(name, [STRAIT, "run", "--config", conf], env=env)

def wait_ready(name, port, ca=None, secs=20):
    end, last = time.time() + secs, None
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                s = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost") if ca else raw
                s.sendall(REQ); data = b""
                while chunk := s.recv(4096):
                    data += chunk
                if data.startswith(b"HTTP/1.1 200") and data.endswith(BODY):
                    return
                last = data[:80]
        except (OSError, ssl.SSLError) as e:
            last = e
        time.sleep(0.1)
    raise SystemExit("tls.py: %s on :%d did not answer 200 with the body in %ds (last: %r; logs in %s)"
                     % (name, port, secs, last, work))

def cpu_secs(pid):
    s, todo = 0, [pid]
    while todo:
        q = todo.pop()
        try:
            f = open("/proc/%d/stat" % q).read().rsplit(")", 1)[1].split()
            s += int(f[11]) + int(f[12])  # utime, stime
            for t in os.listdir("/proc/%d/task" % q):
                todo += [int(c) for c in open("/proc/%d/task/%s/children" % (q, t)).read().split()]
        except (OSError, IndexError):
            pass
    return s / TICK

def handshakes(port, pid, mode, ca, secs):
    c0 = cpu_secs(pid)
    cs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--client", str(port), str(secs), mode, ca or "-"],
                           stdout=subprocess.PIPE, text=True) for _ in range(CLIENTS)]
    outs = []
    for c in cs:
        out, _ = c.communicate(timeout=secs + 30)
        if c.returncode:
            raise SystemExit("tls.py: handshake client exited %d on :%d" % (c.returncode, port))
        outs.append(json.loads(out))
    cpu = cpu_secs(pid) - c0
    ok = sum(o["ok"] for o in outs)
    if not ok:
        raise SystemExit("tls.py: no handshake succeeded on :%d: %s" % (port, outs[0]["first_error"]))
    return dict(rate=sum(o["ok"] / o["secs"] for o in outs), ok=ok, errors=sum(o["errors"] for o in outs),
                first_error=next((o["first_error"] for o in outs if o["first_error"]), None),
                reused_pct=100.0 * sum(o["reused"] for o in outs) / ok, proto=outs[0]["proto"],
                cpu_per_1k=cpu / ok * 1000, client_cpu_per_1k=sum(o["cpu"] for o in outs) / ok * 1000)

LUA = os.path.join(work, "lat.lua")
open(LUA, "w").write("""wrk.headers["Host"] = "hello"
function done(s, l, r)
  local e = s.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", s.requests, s.duration,
    e.connect + e.read + e.write + e.timeout + e.status, l:percentile(50), l:percentile(99)))
end
""")

def latency(url, secs):
    out = subprocess.run(["timeout", str(secs + 15), "wrk", "-t1", "-c1", "-d%ds" % secs, "--timeout", "5s",
                          "-s", LUA, url], capture_output=True, text=True)
    m = re.search(r"RESULT (.*)", out.stdout)
    if out.returncode or not m:
        raise SystemExit("tls.py: wrk failed on %s: %s %s" % (url, out.stdout[-800:], out.stderr[-800:]))
    n, dur, err, p50, p99 = [int(float(x)) for x in m.group(1).split()]
    return dict(requests=n, rps=n / (dur / 1e6), errors=err, p50=p50, p99=p99)

def busy():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)

med = lambda rs, k: statistics.median(r[k] for r in rs)
hs, lat = {}, {}
try:
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = "%d cores, %s, Linux %s; %s; %s; %s; Python ssl: %s" % (
        os.cpu_count(), cpu_model, platform.release(),
        subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip(),
        subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("Copyright")[0].strip(),
        run(["openssl", "version"]).strip(), ssl.OPENSSL_VERSION)
    load0, busy0 = " ".join(open("/proc/loadavg").read().split()[:3]), busy()
    log("machine:", machine)
    log("load average at start:", load0)
    www = os.path.join(work, "www"); os.makedirs(www)
    open(os.path.join(www, "index.html"), "wb").write(BODY)
    bport = free_port()
    start_nginx("backend", bport, "location / { root %s; index index.html; }" % www)
    wait_ready("backend", bport)
    targets = {}  # name -> (port, pid, ca or None)
    for name in ("nginx", "strait"):
        p = free_port()
        proc = start_nginx(name, p, nginx_proxy_body(bport)) if name == "nginx" else start_strait(name, p, bport)
        targets[name] = (p, proc.pid, None)
    for kind in KEYS:
        if kind not in ("ecdsa", "rsa"):
            raise SystemExit("tls.py: KEYS takes ecdsa and/or rsa, not %r" % kind)
        tls = certs(kind)
        for proxy in ("nginx", "strait"):
            name, p = "%s_tls_%s" % (proxy, kind), free_port()
            proc = (start_nginx(name, p, nginx_proxy_body(bport), tls) if proxy == "nginx"
                    else start_strait(name, p, bport, tls))
            targets[name] = (p, proc.pid, tls[0])
    for name, (p, _, ca) in targets.items():
        wait_ready(name, p, ca)

    for kind, mode in [("-", "plain")] + [(k, m) for k in KEYS for m in ("full", "resumed")]:
        for r in range(ROUNDS):
            for proxy in (("nginx", "strait") if r % 2 == 0 else ("strait", "nginx")):
                p, pid, ca = targets[proxy if mode == "plain" else "%s_tls_%s" % (proxy, kind)]
                handshakes(p, pid, mode, ca, 1)  # warm-up
                res = handshakes(p, pid, mode, ca, HS_SECS)
                hs.setdefault((kind, mode, proxy), []).append(res)
                log("handshakes %-5s %-7s %-6s %6.0f/s, proxy CPU %.3f s/1k, client CPU %.3f s/1k, resumed %3.0f%%,"
                    " errors %d %s" % (kind, mode, proxy, res["rate"], res["cpu_per_1k"], res["client_cpu_per_1k"],
                                       res["reused_pct"], res["errors"], res["first_error"] or ""))

    lat_targets = [("direct", bport, None), ("nginx", targets["nginx"][0], None), ("strait", targets["strait"][0], None),
                   ("nginx_tls", targets["nginx_tls_" + KEYS[0]][0], 1), ("strait_tls", targets["strait_tls_" + KEYS[0]][0], 1)]
    for r in range(LAT_ROUNDS):
        for name, p, tls in lat_targets[r % 5:] + lat_targets[:r % 5]:
            url = "%s://127.0.0.1:%d/" % ("https" if tls else "http", p)
            latency(url, 1)  # warm-up
            res = latency(url, LAT_SECS)
            lat.setdefault(name, []).append(res)
            log("latency %-10s p50 %4d us p99 %5d us, %6.0f req/s, errors %d" % (name, res["p50"], res["p99"], res["rps"], res["errors"]))
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

print()
print("Machine: " + machine)
print("Load average at start %s, at end %s; CPU busy %.0f%% over the run (all processes, both cores)." % (load0, load1, busy_pct))
print()
print("Handshakes: %d Python ssl clients x %ds, one `GET /` per connection (Connection: close), %d rounds, median" % (
    CLIENTS, HS_SECS, ROUNDS))
print("| key | mode | proxy | protocol | handshakes/s | proxy CPU s / 1k | client CPU s / 1k | resumed | errors |")
print("|---|---|---|---|---|---|---|---|---|")
for (kind, mode, proxy), rs in hs.items():
    print("| %s | %s | %s | %s | %.0f | %.3f | %.3f | %.0f%% | %d |" % (
        kind, mode, proxy, rs[0]["proto"], med(rs, "rate"), med(rs, "cpu_per_1k"), med(rs, "client_cpu_per_1k"),
        med(rs, "reused_pct"), sum(r["errors"] for r in rs)))
print()
print("| key | mode | Strait/nginx handshakes/s | Strait/nginx proxy CPU | Strait CPU beyond plain, s / 1k | nginx CPU beyond plain, s / 1k | Strait/nginx beyond plain |")
print("|---|---|---|---|---|---|---|")
cpu = lambda k, m, p: med(hs[(k, m, p)], "cpu_per_1k")
for kind, mode in [(k, m) for (k, m, p) in hs if p == "strait" and m != "plain"]:
    s, n = hs[(kind, mode, "strait")], hs[(kind, mode, "nginx")]
    xs, xn = cpu(kind, mode, "strait") - cpu("-", "plain", "strait"), cpu(kind, mode, "nginx") - cpu("-", "plain", "nginx")
    print("| %s | %s | %.2f | %.2f | %.3f | %.3f | %s |" % (kind, mode, med(s, "rate") / med(n, "rate"),
          cpu(kind, mode, "strait") / cpu(kind, mode, "nginx"), xs, xn, "%.2f" % (xs / xn) if xn > 0 else "-"))
print()
print("Latency, keep-alive, wrk -t1 -c1 --latency (closed loop, 1 connection), %ds x %d rounds, median; "
      "TLS targets use the %s certificate; microseconds" % (LAT_SECS, LAT_ROUNDS, KEYS[0]))
print("| target | req/s | p50 | p99 | added p50 vs direct | added p99 vs direct | errors |")
print("|---|---|---|---|---|---|---|")
add = {}
for name, _, _ in lat_targets:
    rs = lat[name]
    add[name] = (med(rs, "p50") - med(lat["direct"], "p50"), med(rs, "p99") - med(lat["direct"], "p99"))
    print("| %s | %.0f | %d | %d | %+d | %+d | %d |" % (name, med(rs, "rps"), med(rs, "p50"), med(rs, "p99"),
          add[name][0], add[name][1], sum(r["errors"] for r in rs)))
print()
ratio = lambda a, b: "%.2f" % (a / b) if b > 0 else "n/a (nginx adds %d)" % b
print("| measure | Strait | nginx | Strait / nginx |")
print("|---|---|---|---|")
for label, s, n in (("added p50, TLS hop (us)", add["strait_tls"][0], add["nginx_tls"][0]),
                    ("added p99, TLS hop (us)", add["strait_tls"][1], add["nginx_tls"][1]),
                    ("added p50, plain hop (us)", add["strait"][0], add["nginx"][0]),
                    ("TLS's own cost at p50: TLS hop - plain hop (us)", add["strait_tls"][0] - add["strait"][0],
                     add["nginx_tls"][0] - add["nginx"][0])):
    print("| %s | %+d | %+d | %s |" % (label, s, n, ratio(s, n)))
bad = [k for k, rs in list(hs.items()) + list(lat.items()) if sum(r["errors"] for r in rs)]
if bad:
    print("\nWARNING: errors in " + ", ".join(map(str, bad)))
if os.environ.get("JSON_OUT"):
    json.dump(dict(machine=machine, handshakes={"/".join(k): v for k, v in hs.items()}, latency=lat),
              open(os.environ["JSON_OUT"], "w"), indent=1)
sys.exit(1 if bad else 0)
