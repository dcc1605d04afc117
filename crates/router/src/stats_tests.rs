#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn removing_a_scope_keeps_every_other_scope() {
    let r = Registry::default();
    let svc = |n: &str| Scope::Service {
        router: "http".into(),
        name: n.into(),
    };
    let client = Scope::Client {
        router: "http".into(),
        id: "/svc/a".into(),
    };
    for scope in [svc("/svc/a"), svc("/svc/a/b"), svc("/svc/"), client.clone()] {
        r.counter(&scope, "requests").incr();
        r.counter(&scope, "status/200").incr();
        r.histogram(&scope, "request_latency_ms");
    }
    r.remove_scope(&svc("/svc/a"));
    let keys: Vec<String> = r.to_json().keys().cloned().collect();
    assert!(
        !keys.iter().any(|k| k.starts_with("rt/http/service/svc/a/r")
            || k.starts_with("rt/http/service/svc/a/s")),
        "{keys:?}"
    );
    for kept in [
        "rt/http/service/svc/a/b/requests",
        "rt/http/service/svc//requests",
        "rt/http/client/svc/a/status/200",
        "rt/http/client/svc/a/request_latency_ms.count",
    ] {
        assert!(keys.iter().any(|k| k == kept), "{kept} kept: {keys:?}");
    }
    r.remove_scope(&client);
    r.remove_scope(&client);
    assert!(!r.to_json().keys().any(|k| k.starts_with("rt/http/client/")));
}

#[test]
fn buckets_are_monotonic_and_within_six_percent() {
    let mut last = 0;
    for v in [0u64, 1, 15, 16, 17, 31, 32, 100, 1_000, 123_456, 10_000_000] {
        let b = bucket_of(v);
        assert!(b >= last, "bucket index grows with the value");
        last = b;
        let floor = bucket_floor(b);
        assert!(
            floor <= v && (v - floor) as f64 <= v as f64 / 16.0 + 1.0,
            "{v} -> floor {floor}"
        );
    }
}

#[test]
fn flat_names_follow_linkerd_scopes() {
    let r = Registry::default();
    r.counter(
        &Scope::Service {
            router: "http".into(),
            name: "/svc/hello".into(),
        },
        "requests",
    )
    .incr();
    r.counter(
        &Scope::Client {
            router: "http".into(),
            id: "/#/io.l5d.fs/hello".into(),
        },
        "status/200",
    )
    .add(2);
    r.counter(
        &Scope::Server {
            router: "http".into(),
            addr: "127.0.0.1/4140".into(),
        },
        "requests",
    )
    .incr();
    let j = r.to_json();
    assert_eq!(j["rt/http/service/svc/hello/requests"], 1);
    assert_eq!(j["rt/http/client/#/io.l5d.fs/hello/status/200"], 2);
    assert_eq!(j["rt/http/server/127.0.0.1/4140/requests"], 1);
}

#[test]
fn prometheus_lifts_router_service_client_and_server_into_labels() {
    let r = Registry::default();
    r.counter(
        &Scope::Service {
            router: "http".into(),
            name: "/svc/foo".into(),
        },
        "requests",
    )
    .incr();
    r.counter(
        &Scope::Client {
            router: "http".into(),
            id: "/#/bar".into(),
        },
        "status/2XX",
    )
    .incr();
    r.histogram(
        &Scope::Service {
            router: "http".into(),
            name: "/svc/foo".into(),
        },
        "request_latency_ms",
    )
    .record(Duration::from_millis(3));
    let text = r.to_prometheus("");
    assert!(
        text.contains("rt:service:requests{rt=\"http\", service=\"/svc/foo\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rt:client:status:2XX{rt=\"http\", client=\"/#/bar\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "rt:service:request_latency_ms{rt=\"http\", service=\"/svc/foo\", quantile=\"0.5\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("rt:service:request_latency_ms_count{rt=\"http\", service=\"/svc/foo\"} 1"),
        "{text}"
    );
}

#[test]
fn histogram_quantiles_are_close() {
    let h = Histogram::default();
    for ms in 1..=100 {
        h.record(Duration::from_millis(ms));
    }
    let s = h.snapshot(&[0.5, 0.99]);
    assert_eq!(s.count, 100);
    assert!(
        (s.quantiles[0] - 50.0).abs() <= 50.0 / 16.0 + 0.001,
        "p50 ~ 50 ms, got {}",
        s.quantiles[0]
    );
    assert!(
        (s.quantiles[1] - 99.0).abs() <= 99.0 / 16.0 + 0.001,
        "p99 ~ 99 ms, got {}",
        s.quantiles[1]
    );
    assert_eq!(s.max_ms, 100.0);
}

#[test]
fn histogram_spans_microseconds_to_days() {
    let h = Histogram::default();
    h.record(Duration::ZERO);
    for _ in 0..97 {
        h.record(Duration::from_micros(300));
    }
    h.record(Duration::from_secs(86_400 * 400));
    h.record(Duration::MAX);
    let s = h.snapshot(&[0.0, 0.5, 1.0]);
    assert_eq!(s.count, 100);
    assert_eq!(s.quantiles[0], 0.0);
    assert!(
        (s.quantiles[1] - 0.3).abs() <= 0.3 / 16.0,
        "{:?}",
        s.quantiles
    );
    assert!(
        s.quantiles[2] > 1e9,
        "the top bucket holds the outliers: {:?}",
        s.quantiles
    );
}

#[test]
fn a_routers_own_gauge_is_rt_label_name_with_the_router_as_a_label() {
    let r = Registry::default();
    let scope = Scope::Router {
        router: "outgoing".into(),
    };
    r.gauge(&scope, "originator").set(1);
    assert_eq!(r.to_json()["rt/outgoing/originator"], 1);
    assert!(
        r.to_prometheus("")
            .contains("rt:originator{rt=\"outgoing\"} 1\n"),
        "{}",
        r.to_prometheus("")
    );
    r.remove_scope(&scope);
    assert!(r.to_json().is_empty());
}
