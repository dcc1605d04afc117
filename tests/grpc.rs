//! gRPC through the h2 router, end to end: the real binary between real
//! grpcio clients and servers (Python, from PyPI; scripts/test installs a
//! pinned grpcio into target/test-venv). The router is Linkerd 1's gRPC
//! setup: `protocol: h2`, `io.l5d.header.path` with `segments: 1` (a call
//! to `/strait.test.Echo/Unary` names `/svc/strait.test.Echo`), an
//! `io.l5d.fs` directory whose file `strait.test.Echo` lists the backends.
//! Every client makes all its calls on ONE channel (one HTTP/2
//! connection), with grpcio's own retries off.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strait_test_kit::grpc::{
    GrpcBackend, GrpcLoad, GrpcRun, SERVICE, grpc_client, grpc_frame, h2_curl, percent_decode,
};
use strait_test_kit::nginx::Nginx;
use strait_test_kit::{Backend, Behavior, Strait, rss_kib};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// Strait with one h2 router `grpc` as in Linkerd's gRPC examples.
struct Mesh {
    _dir: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    /// `services`: fs file name and the `host port` lines in it;
    /// `classifier`: the `responseClassifier` kind.
    fn start(services: &[(&str, Vec<String>)], classifier: &str) -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        for (name, lines) in services {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(disco.join(name), text).unwrap();
        }
        let path = dir.path().join("linkerd.yaml");
        std::fs::write(
            &path,
            format!(
                "admin: {{port: 0}}\n\
                 namers:\n\
                 - kind: io.l5d.fs\n  rootDir: {}\n\
                 routers:\n\
                 - protocol: h2\n  label: grpc\n  \
                 identifier: {{kind: io.l5d.header.path, segments: 1}}\n  \
                 dtab: /svc => /#/io.l5d.fs;\n  \
                 service:\n    responseClassifier: {{kind: {classifier}}}\n  \
                 servers: [{{port: 0}}]\n",
                disco.display()
            ),
        )
        .unwrap();
        let strait = Strait::start(BIN, &path);
        Mesh { _dir: dir, strait }
    }

    /// Strait in front of `backends`, all serving `strait.test.Echo`.
    fn echo(backends: &[&GrpcBackend], classifier: &str) -> Mesh {
        let lines = backends.iter().map(|b| b.fs_line()).collect();
        Mesh::start(&[(SERVICE, lines)], classifier)
    }

    fn addr(&self) -> SocketAddr {
        self.strait.router()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }
}

fn three() -> Vec<GrpcBackend> {
    ["a", "b", "c"]
        .into_iter()
        .map(GrpcBackend::start)
        .collect()
}

/// Asserts every call ended OK, listing the ones that did not.
fn all_ok(what: &str, run: &GrpcRun) {
    assert!(run.calls > 0, "{what}: no call finished: {:?}", run.raw);
    assert_eq!(
        run.failed(),
        0,
        "{what}: {} of {} calls failed (codes {:?}); failed calls: {:#?}",
        run.failed(),
        run.calls,
        run.codes,
        run.failures
    );
}

/// A gRPC request for `curl --http2-prior-knowledge` to `url`, with
/// `headers` added.
fn grpc_curl(url: &str, headers: &[&str], message: &[u8]) -> strait_test_kit::grpc::H2Response {
    let mut args = vec![
        "--http2-prior-knowledge",
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
    ];
    for h in headers {
        args.extend(["-H", h]);
    }
    args.push(url);
    h2_curl(&args, Some(&grpc_frame(message)))
}

#[test]
fn calls_of_every_kind_on_one_channel_are_spread_over_three_backends() {
    let backends = three();
    let mesh = Mesh::echo(
        &backends.iter().collect::<Vec<_>>(),
        "io.l5d.h2.grpc.alwaysRetryable",
    );
    let kinds: [(&str, &str, u64, &[&str]); 4] = [
        ("unary", "Unary", 300, &[]),
        ("server_stream", "ServerStream", 120, &["--messages", "5"]),
        (
            "client_stream",
            "ClientStream",
            120,
            &["--size", "100000", "--chunk", "8192"],
        ),
        ("bidi", "Bidi", 120, &["--messages", "5"]),
    ];
    for (kind, method, calls, extra) in kinds {
        let n = calls.to_string();
        let mut args = vec!["--kind", kind, "--calls", &n];
        args.extend_from_slice(extra);
        let run = grpc_client(mesh.addr(), &args);
        all_ok(kind, &run);
        assert_eq!(run.calls, calls, "{kind}: {:?}", run.codes);
        // A fair share is a third; p2c over three idle endpoints gives
        // each about that. Half of it is far below what chance allows
        // (four standard deviations at 120 calls) and far above what
        // one connection pinned to one backend, or a balancer that
        // ignores one endpoint, would give.
        for b in &backends {
            let got = run.backends.get(&b.name).copied().unwrap_or(0);
            assert!(
                got >= calls / 6,
                "{kind}: backend {} answered {got} of {calls} calls made on one channel; \
                 each of three should get about a third (all: {:?})",
                b.name,
                run.backends
            );
        }
        // Each call reached exactly one backend once: what the backends
        // counted adds up to what the client made.
        let served: u64 = backends.iter().map(|b| b.stats().calls(method)).sum();
        assert_eq!(
            served, calls,
            "{kind}: the backends served {served} {method} calls for {calls} made"
        );
    }
}

#[test]
fn killing_a_backend_under_load_fails_no_call_with_a_retryable_classifier() {
    let mut backends = three();
    let mesh = Mesh::echo(
        &backends.iter().collect::<Vec<_>>(),
        "io.l5d.h2.grpc.alwaysRetryable",
    );
    let mut load = GrpcLoad::start(mesh.addr(), &["--kind", "unary", "--parallel", "4"]);
    let before = load.wait_calls(300);
    // A crash, not a deploy: the fs file still lists it, its port
    // refuses, and calls in flight on its connection are reset.
    backends[2].kill();
    // Long enough after the kill for many calls to pick the dead
    // endpoint before failure accrual takes it out.
    let after = load.wait_calls(before + 1500);
    let run = load.stop();
    eprintln!(
        "{} calls, {before} before the kill, per backend {:?}",
        run.calls, run.backends
    );
    all_ok("unary calls while backend c was killed", &run);
    assert!(run.calls >= after, "{:?}", run.codes);
    for b in &backends {
        assert!(
            run.backends.get(&b.name).copied().unwrap_or(0) > 0,
            "backend {} answered nothing: {:?}",
            b.name,
            run.backends
        );
    }
    // The survivors took over: together they served every call made
    // after the kill.
    let survivors: u64 = backends[..2].iter().map(|b| b.stats().calls("Unary")).sum();
    assert!(
        survivors >= run.calls - before,
        "a and b served {survivors} calls; {} were made after c died",
        run.calls - before
    );
}

#[test]
fn a_grpc_timeout_expires_as_deadline_exceeded_and_is_propagated() {
    let a = GrpcBackend::start("a");
    // A backend that never answers, behind an HTTP/2 nginx: only the
    // router can end a call to it at its deadline (grpcio servers
    // enforce grpc-timeout themselves).
    let hang = Backend::scripted("hang", Behavior::Hang);
    let nginx = Nginx::h2c(
        &format!("proxy_pass http://{};", hang.addr),
        "proxy_read_timeout 60s;",
    );
    let mesh = Mesh::start(
        &[
            (SERVICE, vec![a.fs_line()]),
            ("strait.test.Hang", vec![nginx.fs_line()]),
        ],
        "io.l5d.h2.grpc.alwaysRetryable",
    );

    // A real client: a 200 ms deadline on a call that takes 2 s.
    let run = grpc_client(
        mesh.addr(),
        &["--kind", "slow", "--arg", "2000", "--timeout-ms", "200"],
    );
    assert_eq!(
        run.codes.get("DEADLINE_EXCEEDED"),
        Some(&1),
        "a 200 ms deadline on a 2 s call: {:?}",
        run.results
    );
    // The deadline went on to the backend as grpc-timeout, no longer
    // than the client's.
    let stats = a.stats();
    assert_eq!(stats.calls("Slow"), 1, "the call reached the backend");
    let left = stats.deadline_ms.get("Slow").copied().flatten();
    assert!(
        left.is_some_and(|ms| ms > 0.0 && ms <= 200.0),
        "the backend saw the call with {left:?} ms left; the client gave 200 (grpc-timeout \
         must be forwarded, and not lengthened)"
    );

    // The router itself ends the call: curl does not enforce
    // grpc-timeout, and the backend behind nginx never answers.
    let r = grpc_curl(
        &mesh.url("/strait.test.Hang/Call"),
        &["grpc-timeout: 200m"],
        b"",
    );
    assert_eq!(
        r.grpc_status(),
        Some("4"),
        "grpc-timeout 200m to a backend that never answers: curl got {r:?}"
    );
    assert!(
        r.elapsed < Duration::from_millis(1500),
        "DEADLINE_EXCEEDED came after {:?}, the deadline was 200 ms",
        r.elapsed
    );
    // The same for a grpcio backend: the client sees 4 in time.
    let r = grpc_curl(
        &mesh.url("/strait.test.Echo/Slow"),
        &["grpc-timeout: 200m"],
        b"2000",
    );
    assert_eq!(r.grpc_status(), Some("4"), "curl got {r:?}");
    assert!(r.elapsed < Duration::from_millis(1500), "{:?}", r.elapsed);
}

#[test]
fn an_unroutable_service_is_unavailable_with_linkerds_error_text() {
    let a = GrpcBackend::start("a");
    let mesh = Mesh::echo(&[&a], "io.l5d.h2.grpc.default");
    // No fs file names strait.test.Nowhere: /svc/strait.test.Nowhere
    // binds to nothing.
    let run = grpc_client(
        mesh.addr(),
        &["--kind", "unary", "--service", "strait.test.Nowhere"],
    );
    let call = &run.results[0];
    assert_eq!(call.code, "UNAVAILABLE", "{call:?}");
    let details = call.details.clone().unwrap_or_default();
    assert!(
        details.contains("Unable to route request!")
            && details.contains("/svc/strait.test.Nowhere"),
        "the status details should be Linkerd's error text naming the service: {details:?}"
    );
    assert_eq!(a.stats().calls("Unary"), 0, "nothing reached the backend");

    // Without a request body: the router answers at once, and when curl
    // (7.88) has not sent the body yet, the router's RST_STREAM NO_ERROR
    // after the complete response (RFC 9113 8.1, what it should send)
    // makes curl report a stream error (92) instead of the response.
    let url = mesh.url("/strait.test.Nowhere/Unary");
    let r = h2_curl(
        &[
            "--http2-prior-knowledge",
            "-X",
            "POST",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            &url,
        ],
        None,
    );
    assert_eq!(r.grpc_status(), Some("14"), "curl got {r:?}");
    let message = r.grpc_message().unwrap_or_default();
    assert!(
        message.contains("Unable to route request!"),
        "grpc-message: {message:?} ({r:?})"
    );
    let err = r
        .header("l5d-err")
        .map(|e| percent_decode(&e.replace('+', " ")))
        .unwrap_or_default();
    assert!(
        err.contains("Unable to route request!"),
        "l5d-err (URL-decoded): {err:?} ({r:?})"
    );

    // The routable service still works on the same router.
    all_ok(
        "unary to Echo",
        &grpc_client(mesh.addr(), &["--kind", "unary"]),
    );
}

#[test]
fn ten_megabytes_stream_through_with_flat_memory() {
    const TEN_MIB: u64 = 10 << 20;
    // What Strait's RSS may grow by while 10 MiB pass: HTTP/2 flow
    // control lets only a window per stream and hop sit in the router
    // (64 KiB by Linkerd's defaults, a few MiB at most with larger
    // ones), while a router that held the message would grow by 10 MiB.
    // Half the message lies between the two.
    const BOUND_KIB: u64 = 5 << 10;
    let a = GrpcBackend::start("a");
    let mesh = Mesh::echo(&[&a], "io.l5d.h2.grpc.default");
    let pid = mesh.strait.proc.pid();
    // Warm up: connections, buffers and thread stacks as in use.
    for kind in ["client_stream", "big"] {
        let run = grpc_client(mesh.addr(), &["--kind", kind, "--size", "1048576"]);
        all_ok(kind, &run);
    }
    let baseline = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut moved = BTreeMap::new();
    for (kind, chunk) in [
        // Uploads: 160 messages of 64 KiB, and one message of 10 MiB.
        ("client_stream", "65536"),
        ("client_stream", "10485760"),
        // Downloads: the same.
        ("big", "65536"),
        ("big", "10485760"),
    ] {
        let run = grpc_client(
            mesh.addr(),
            &[
                "--kind",
                kind,
                "--size",
                &TEN_MIB.to_string(),
                "--chunk",
                chunk,
            ],
        );
        all_ok(&format!("{kind} of 10 MiB in {chunk}-byte messages"), &run);
        assert_eq!(
            run.results[0].bytes, TEN_MIB,
            "{kind} {chunk}: {:?}",
            run.results
        );
        moved.insert(format!("{kind}/{chunk}"), run.elapsed_ms);
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let grew = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!("RSS {baseline} KiB, peak +{grew} KiB; ms per transfer {moved:?}");
    assert!(
        grew < BOUND_KIB,
        "Strait's RSS grew by {grew} KiB (from {baseline} KiB) while 4 x 10 MiB streamed \
         through; the bound is {BOUND_KIB} KiB (ms per transfer: {moved:?})"
    );
}
