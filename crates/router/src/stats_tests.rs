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
    r.roll_minute();
    let text = r.to_prometheus("");
    assert!(
        text.contains("rt:service:requests{rt=\"http\", service=\"svc/foo\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rt:client:status:2XX{rt=\"http\", client=\"#/bar\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "rt:service:request_latency_ms{rt=\"http\", service=\"svc/foo\", quantile=\"0.5\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("rt:service:request_latency_ms_count{rt=\"http\", service=\"svc/foo\"} 1"),
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

#[test]
fn prometheus_label_values_drop_the_leading_slash_as_linkerd_routers_do() {
    let r = Registry::default();
    r.counter(
        &Scope::Client {
            router: "http".into(),
            id: "/#/io.l5d.consul/dc1/hello".into(),
        },
        "requests",
    )
    .incr();
    r.counter(
        &Scope::Client {
            router: "http".into(),
            id: "/%/io.l5d.port/4141/#/io.l5d.fs/hello".into(),
        },
        "requests",
    )
    .incr();
    r.counter(
        &Scope::Server {
            router: "http".into(),
            addr: "0.0.0.0/4140".into(),
        },
        "requests",
    )
    .incr();
    r.counter(
        &Scope::Service {
            router: "http".into(),
            name: "/svc/hello".into(),
        },
        "requests",
    )
    .incr();
    for style in [PromStyle::Linkerd, PromStyle::Conventional] {
        let text = r.render_prometheus("", style);
        for want in [
            "client=\"#/io.l5d.consul/dc1/hello\"",
            "client=\"%/io.l5d.port/4141/#/io.l5d.fs/hello\"",
            "server=\"0.0.0.0/4140\"",
            "service=\"svc/hello\"",
        ] {
            assert!(text.contains(want), "{style:?}: {want} in\n{text}");
        }
        assert!(
            !text.contains("=\"/"),
            "{style:?}: no leading slash:\n{text}"
        );
    }
    assert_eq!(label_value("/svc/a"), "svc/a");
    assert_eq!(label_value("//a"), "/a", "only one slash goes");
    assert_eq!(label_value("svc"), "svc");
}

#[test]
fn prometheus_buckets_are_inclusive_upper_bounds() {
    assert_eq!(PROM_BOUNDS_US.len() + 1, PROM_LE.len());
    assert_eq!(prom_bucket_of(0), 0);
    assert_eq!(prom_bucket_of(100), 0, "le is inclusive");
    assert_eq!(prom_bucket_of(101), 1);
    assert_eq!(prom_bucket_of(1_000), 3);
    assert_eq!(prom_bucket_of(30_000_000), 16);
    assert_eq!(prom_bucket_of(30_000_001), 17, "past 30 s: +Inf");
    assert_eq!(prom_bucket_of(u64::MAX), 17);
    for (bound, le) in PROM_BOUNDS_US.iter().zip(PROM_LE) {
        let secs: f64 = le.parse().unwrap();
        assert!(
            (secs * 1e6 - *bound as f64).abs() < 1e-6,
            "{le} is {bound} µs"
        );
    }
}

#[test]
fn conventional_latency_is_a_cumulative_prometheus_histogram_in_seconds() {
    let r = Registry::default();
    let scope = Scope::Service {
        router: "http".into(),
        name: "/svc/foo".into(),
    };
    let h = r.histogram(&scope, "request_latency_ms");
    h.record(Duration::from_micros(80));
    h.record(Duration::from_millis(3));
    h.record(Duration::from_secs(60));
    let text = r.render_prometheus("", PromStyle::Conventional);
    let l = "rt=\"http\", service=\"svc/foo\"";
    for want in [
        "# TYPE rt_service_request_latency_seconds histogram".to_owned(),
        format!("rt_service_request_latency_seconds_bucket{{{l}, le=\"0.0001\"}} 1"),
        format!("rt_service_request_latency_seconds_bucket{{{l}, le=\"0.0025\"}} 1"),
        format!("rt_service_request_latency_seconds_bucket{{{l}, le=\"0.005\"}} 2"),
        format!("rt_service_request_latency_seconds_bucket{{{l}, le=\"30\"}} 2"),
        format!("rt_service_request_latency_seconds_bucket{{{l}, le=\"+Inf\"}} 3"),
        format!("rt_service_request_latency_seconds_count{{{l}}} 3"),
        format!("rt_service_request_latency_seconds_sum{{{l}}} 60.00308"),
    ] {
        assert!(text.contains(&want), "{want} in\n{text}");
    }
    assert!(!text.contains("quantile="), "no summary beside it:\n{text}");
    // Linkerd's names keep the summary in milliseconds, of the last minute.
    r.roll_minute();
    let linkerd = r.to_prometheus("");
    assert!(linkerd.contains(&format!("rt:service:request_latency_ms_count{{{l}}} 3")));
    assert!(!linkerd.contains("_bucket"), "{linkerd}");
}

#[test]
fn conventional_status_counters_carry_the_code_as_a_label() {
    let r = Registry::default();
    let scope = Scope::Client {
        router: "http".into(),
        id: "/#/io.l5d.fs/a".into(),
    };
    r.counter(&scope, "status/200").add(2);
    r.counter(&scope, "status/2XX").add(2);
    r.counter(&scope, "status/503").incr();
    let text = r.render_prometheus("", PromStyle::Conventional);
    let l = "rt=\"http\", client=\"#/io.l5d.fs/a\"";
    for want in [
        "# TYPE rt_client_responses_total counter".to_owned(),
        format!("rt_client_responses_total{{{l}, status_code=\"200\"}} 2"),
        format!("rt_client_responses_total{{{l}, status_code=\"503\"}} 1"),
        "# TYPE rt_client_responses_by_class_total counter".to_owned(),
        format!("rt_client_responses_by_class_total{{{l}, status_class=\"2XX\"}} 2"),
    ] {
        assert!(text.contains(&want), "{want} in\n{text}");
    }
    let linkerd = r.to_prometheus("");
    assert!(
        linkerd.contains(&format!("rt:client:status:200{{{l}}} 2")),
        "{linkerd}"
    );
}

#[test]
fn conventional_counter_names_end_in_total_once() {
    let r = Registry::default();
    let scope = Scope::Service {
        router: "http".into(),
        name: "/svc/a".into(),
    };
    r.counter(&scope, "retries/total").incr();
    r.counter(&scope, "requests").incr();
    let text = r.render_prometheus("", PromStyle::Conventional);
    assert!(text.contains("rt_service_retries_total{"), "{text}");
    assert!(text.contains("rt_service_requests_total{"), "{text}");
    assert!(!text.contains("_total_total"), "{text}");
}

#[test]
fn linkerd_summaries_describe_the_last_closed_minute() {
    let r = Registry::default();
    let scope = Scope::Service {
        router: "http".into(),
        name: "/svc/foo".into(),
    };
    let h = r.histogram(&scope, "request_latency_ms");
    h.record(Duration::from_millis(100));
    let l = "rt=\"http\", service=\"svc/foo\"";
    assert!(
        !r.to_prometheus("").contains("request_latency_ms"),
        "nothing before the first minute closes"
    );
    r.roll_minute();
    let text = r.to_prometheus("");
    for want in [
        format!("rt:service:request_latency_ms_count{{{l}}} 1"),
        format!("rt:service:request_latency_ms_sum{{{l}}} 100"),
        format!("rt:service:request_latency_ms_avg{{{l}}} 100"),
        format!("rt:service:request_latency_ms{{{l}, quantile=\"1\"}} 100"),
        "# TYPE rt:service:request_latency_ms_avg gauge".to_owned(),
    ] {
        assert!(text.contains(&want), "{want} in\n{text}");
    }
    // The next minute holds only its own samples.
    h.record(Duration::from_millis(2));
    h.record(Duration::from_millis(2));
    r.roll_minute();
    let text = r.to_prometheus("");
    for want in [
        format!("rt:service:request_latency_ms_count{{{l}}} 2"),
        format!("rt:service:request_latency_ms_sum{{{l}}} 4"),
        format!("rt:service:request_latency_ms{{{l}, quantile=\"0.99\"}} 2"),
    ] {
        assert!(text.contains(&want), "{want} in\n{text}");
    }
    // A minute without samples: omitted, as Linkerd does.
    r.roll_minute();
    assert!(!r.to_prometheus("").contains("request_latency_ms"));
    // metrics.json and /metrics stay cumulative.
    assert_eq!(
        r.to_json()["rt/http/service/svc/foo/request_latency_ms.count"],
        3
    );
}

#[test]
fn router_scoped_metrics_lift_the_router_into_the_rt_label() {
    let r = Registry::default();
    let scope = Scope::Router {
        router: "outgoing".into(),
    };
    r.counter(&scope, "bindcache/path/misses").add(2);
    assert_eq!(r.to_json()["rt/outgoing/bindcache/path/misses"], 2);
    assert!(
        r.to_prometheus("")
            .contains("rt:bindcache:path:misses{rt=\"outgoing\"} 2")
    );
    assert!(
        r.render_prometheus("", PromStyle::Conventional)
            .contains("rt_bindcache_path_misses_total{rt=\"outgoing\"} 2")
    );
}
