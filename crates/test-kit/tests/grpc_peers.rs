//! The test kit's gRPC peers and HTTP/2 tools against each other, with
//! no router between them: what the h2 router's tests rely on holds for
//! real grpcio (scripts/test installs it) and a real nginx.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use strait_test_kit::grpc::{
    GrpcBackend, GrpcLoad, grpc_client, grpc_frame, h2_curl, percent_decode,
};
use strait_test_kit::nginx::Nginx;
use strait_test_kit::{Backend, Behavior};

#[test]
fn the_client_makes_every_kind_of_call_to_a_backend_and_checks_the_replies() {
    let a = GrpcBackend::start("a");
    let kinds: [(&str, &str, &[&str]); 5] = [
        ("unary", "Unary", &["--size", "1000"]),
        ("server_stream", "ServerStream", &["--messages", "7"]),
        (
            "client_stream",
            "ClientStream",
            &["--size", "300000", "--chunk", "4096"],
        ),
        ("bidi", "Bidi", &["--messages", "7"]),
        ("big", "Big", &["--size", "1000000", "--chunk", "30000"]),
    ];
    for (kind, method, extra) in kinds {
        let mut args = vec!["--kind", kind, "--calls", "5", "--parallel", "2"];
        args.extend_from_slice(extra);
        let run = grpc_client(a.addr, &args);
        assert_eq!(run.calls, 5, "{kind}: {run:?}");
        assert_eq!(run.ok(), 5, "{kind}: {:?}", run.failures);
        assert_eq!(
            run.backends.get("a"),
            Some(&5),
            "{kind}: {:?}",
            run.backends
        );
        assert_eq!(a.stats().calls(method), 5, "{kind}");
    }
    let run = grpc_client(
        a.addr,
        &[
            "--kind",
            "client_stream",
            "--size",
            "300000",
            "--chunk",
            "4096",
        ],
    );
    assert_eq!(run.results[0].bytes, 300_000);
    assert_eq!(
        run.results[0].messages, 74,
        "300000 bytes in 4096-byte messages"
    );
    let run = grpc_client(
        a.addr,
        &["--kind", "big", "--size", "1000000", "--chunk", "30000"],
    );
    assert_eq!(run.results[0].bytes, 1_000_000);
    assert_eq!(run.results[0].messages, 34);
}

#[test]
fn status_codes_deadlines_and_metadata_reach_the_client_and_the_backend() {
    let a = GrpcBackend::start("a");
    let run = grpc_client(a.addr, &["--kind", "fail", "--arg", "14"]);
    assert_eq!(run.results[0].code, "UNAVAILABLE", "{run:?}");
    assert!(
        run.results[0]
            .details
            .as_deref()
            .unwrap_or("")
            .contains("backend a fails with UNAVAILABLE"),
        "{run:?}"
    );
    let run = grpc_client(
        a.addr,
        &[
            "--kind",
            "slow",
            "--arg",
            "2000",
            "--timeout-ms",
            "200",
            "--metadata",
            "x-test=yes",
        ],
    );
    assert_eq!(run.results[0].code, "DEADLINE_EXCEEDED", "{run:?}");
    assert!(run.results[0].ms < 1500.0, "{run:?}");
    let stats = a.stats();
    let left = stats.deadline_ms["Slow"].unwrap();
    assert!(left > 0.0 && left <= 200.0, "{left}");
    assert_eq!(stats.metadata("Slow")["x-test"], "yes");
    // Without a deadline the backend sees none.
    grpc_client(a.addr, &["--kind", "unary"]);
    assert_eq!(a.stats().deadline_ms["Unary"], None);
    // A method the backend lacks.
    let run = grpc_client(a.addr, &["--kind", "unary", "--service", "x.Nowhere"]);
    assert_eq!(run.results[0].code, "UNIMPLEMENTED", "{run:?}");
}

#[test]
fn a_load_runs_until_stopped_and_counts_what_it_did() {
    let mut a = GrpcBackend::start("a");
    let mut load = GrpcLoad::start(a.addr, &["--kind", "unary", "--parallel", "3"]);
    let done = load.wait_calls(200);
    assert!(done >= 200);
    // With the only backend gone, calls fail: and the report says so.
    a.kill();
    let run = load.stop();
    assert!(run.calls >= done, "{:?}", run.codes);
    assert!(run.ok() >= 200, "{:?}", run.codes);
}

#[test]
fn curl_speaks_grpc_with_trailers_and_grpc_timeout() {
    let a = GrpcBackend::start("a");
    let grpc = |path: &str, extra: &[&str], msg: &[u8]| {
        let url = format!("http://{}{path}", a.addr);
        let mut args = vec![
            "--http2-prior-knowledge",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ];
        for h in extra {
            args.extend(["-H", h]);
        }
        args.push(&url);
        h2_curl(&args, Some(&grpc_frame(msg)))
    };
    let r = grpc("/strait.test.Echo/Unary", &[], b"hi");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.http_version, "2");
    assert_eq!(r.header("content-type"), Some("application/grpc"));
    assert_eq!(r.trailer("grpc-status"), Some("0"), "{r:?}");
    assert_eq!(r.body, grpc_frame(b"a\nhi"));
    let r = grpc("/strait.test.Echo/Slow", &["grpc-timeout: 200m"], b"2000");
    assert_eq!(r.grpc_status(), Some("4"), "{r:?}");
    assert!(r.elapsed < Duration::from_millis(1500));
    let r = grpc("/strait.test.Echo/Fail", &[], b"14");
    assert_eq!(r.grpc_status(), Some("14"), "{r:?}");
    assert_eq!(
        r.grpc_message().as_deref(),
        Some("backend a fails with UNAVAILABLE as asked")
    );
    assert_eq!(
        percent_decode("Unable%20to%0Aroute%21"),
        "Unable to\nroute!"
    );
}

#[test]
fn nginx_serves_h2c_and_a_hanging_upstream_never_answers() {
    let n = Nginx::h2c(
        "default_type text/plain; return 200 \"over $server_protocol\\n\";",
        "",
    );
    let url = format!("http://{}/", n.addr);
    let r = h2_curl(&["--http2-prior-knowledge", &url], None);
    assert_eq!(r.status, 200, "{r:?} {}", n.error_log());
    assert_eq!(r.http_version, "2");
    assert_eq!(r.text(), "over HTTP/2.0\n");

    let hang = Backend::scripted("hang", Behavior::Hang);
    let n = Nginx::h2c(&format!("proxy_pass http://{};", hang.addr), "");
    let url = format!("http://{}/strait.test.Hang/Call", n.addr);
    let r = h2_curl(
        &[
            "--http2-prior-knowledge",
            "--max-time",
            "1",
            "-H",
            "content-type: application/grpc",
            "-H",
            "grpc-timeout: 200m",
            &url,
        ],
        Some(&grpc_frame(b"")),
    );
    assert_eq!(r.exit, 28, "curl timed out, nothing answered: {r:?}");
    assert_eq!(r.grpc_status(), None);
}
