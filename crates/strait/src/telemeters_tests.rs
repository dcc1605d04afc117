#![allow(clippy::unwrap_used)]
use super::*;

fn service() -> Scope {
    Scope::Service {
        router: "http".into(),
        name: "/svc/hello".into(),
    }
}

fn client() -> Scope {
    Scope::Client {
        router: "http".into(),
        id: "/#/io.l5d.fs/cat".into(),
    }
}

#[test]
fn statsd_names_are_linkerds() {
    assert_eq!(
        statsd_name("linkerd", &service().flat_name("requests")),
        "linkerd.rt.http.service.svc.hello.requests"
    );
    assert_eq!(
        statsd_name("linkerd", &client().flat_name("requests")),
        "linkerd.rt.http.client._.io_l5d_fs.cat.requests"
    );
    assert_eq!(
        statsd_name(
            "l5d",
            &Scope::Server {
                router: "http".into(),
                addr: "0.0.0.0/4140".into()
            }
            .flat_name("connects")
        ),
        "l5d.rt.http.server.0_0_0_0.4140.connects"
    );
    assert_eq!(statsd_name("p", "a//b"), "p.a.b", "`//` becomes `/`");
}

#[test]
fn statsd_sends_counter_changes_gauges_and_sampled_timers() {
    let r = Registry::default();
    let c = r.counter(&service(), "requests");
    let g = r.gauge(&service(), "pending");
    let h = r.histogram(&service(), "request_latency_ms");
    c.add(3);
    g.set(2);
    for _ in 0..10 {
        h.record(Duration::from_millis(5));
    }
    let mut s = Statsd::new("linkerd", 1.0);
    let lines = s.lines(&r);
    let name = "linkerd.rt.http.service.svc.hello";
    assert!(
        lines.contains(&format!("{name}.requests:3|c")),
        "{lines:#?}"
    );
    assert!(lines.contains(&format!("{name}.pending:2|g")), "{lines:#?}");
    let timers: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("{name}.request_latency_ms:")))
        .collect();
    assert_eq!(timers.len(), 10, "rate 1: every sample, {lines:#?}");
    let v: f64 = timers[0]
        .trim_start_matches(&format!("{name}.request_latency_ms:"))
        .trim_end_matches("|ms")
        .parse()
        .unwrap();
    assert!((4.6..=5.0).contains(&v), "the bucket of 5 ms: {v}");

    // Only what changed is sent next time; gauges always.
    c.incr();
    let lines = s.lines(&r);
    assert!(
        lines.contains(&format!("{name}.requests:1|c")),
        "{lines:#?}"
    );
    assert!(lines.contains(&format!("{name}.pending:2|g")), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("|ms")),
        "no new samples, no timers: {lines:#?}"
    );
    c.add(0);
    let lines = s.lines(&r);
    assert!(
        !lines.iter().any(|l| l.contains("|c")),
        "no change, no counter line: {lines:#?}"
    );
}

#[test]
fn statsd_timers_carry_the_sample_rate() {
    let r = Registry::default();
    let h = r.histogram(&service(), "request_latency_ms");
    for _ in 0..1000 {
        h.record(Duration::from_millis(2));
    }
    let mut s = Statsd::new("linkerd", 0.01);
    let lines = s.lines(&r);
    assert_eq!(lines.len(), 10, "1 % of 1000: {lines:#?}");
    assert!(lines.iter().all(|l| l.ends_with("|ms|@0.01")), "{lines:#?}");
}

#[test]
fn statsd_negative_gauges_are_set_from_zero() {
    let r = Registry::default();
    r.gauge(&Scope::Root("x".into()), "g").set(-4);
    let lines = Statsd::new("linkerd", 0.01).lines(&r);
    assert_eq!(lines, ["linkerd.x.g:0|g", "linkerd.x.g:-4|g"]);
}

#[test]
fn datagrams_pack_lines_within_the_size() {
    let lines: Vec<String> = (0..200).map(|i| format!("linkerd.metric{i}:1|c")).collect();
    let ds = datagrams(&lines);
    assert!(ds.len() > 1);
    assert!(ds.iter().all(|d| d.len() <= MAX_DATAGRAM));
    let back: Vec<&str> = ds.iter().flat_map(|d| d.split('\n')).collect();
    assert_eq!(back, lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn influxdb_lines_are_linkerds() {
    let r = Registry::default();
    r.counter(&client(), "requests").add(7);
    r.counter(&client(), "success").add(7);
    r.counter(&service(), "status/200").add(2);
    r.gauge(&Scope::Root(String::new().into()), "uptime").set(3);
    r.counter(&Scope::Root("namer/io.l5d.fs".into()), "lookups")
        .add(1);
    r.gauge(
        &Scope::Server {
            router: "http".into(),
            addr: "127.0.0.1/4141".into(),
        },
        "connections",
    )
    .set(1);
    let text = influxdb(&r, "localhost:9990");
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "rt:client,client=#/io.l5d.fs/cat,host=localhost:9990,rt=http requests=7,success=7",
        "rt:service:status,host=localhost:9990,rt=http,service=svc/hello 200=2",
        "root,host=localhost:9990 uptime=3.0",
        "namer:io_l5d_fs,host=localhost:9990 lookups=1",
        "rt:server,host=localhost:9990,rt=http,server=127.0.0.1/4141 connections=1.0",
    ] {
        assert!(lines.contains(&want), "{want}\nin\n{text}");
    }
}

#[test]
fn influxdb_histograms_show_the_last_minute_only() {
    let r = Registry::default();
    let h = r.histogram(&service(), "request_latency_ms");
    h.record(Duration::from_millis(1));
    h.record(Duration::from_millis(2));
    assert_eq!(
        influxdb(&r, "none"),
        "",
        "nothing before the first snapshot"
    );
    r.roll_minute();
    let text = influxdb(&r, "none");
    assert_eq!(
        text,
        "rt:service,host=none,rt=http,service=svc/hello request_latency_ms_avg=1.5,\
         request_latency_ms_count=2,request_latency_ms_max=2,request_latency_ms_min=1,\
         request_latency_ms_p50=1,request_latency_ms_p90=1.984,request_latency_ms_p95=1.984,\
         request_latency_ms_p99=1.984,request_latency_ms_p999=1.984,\
         request_latency_ms_p9999=1.984,request_latency_ms_sum=3\n",
        "Linkerd's fields; quantiles are bucket floors (within ~6 %), min and max exact"
    );
}

#[test]
fn influxdb_escapes_what_would_break_a_line() {
    let r = Registry::default();
    r.counter(&client(), "requests").incr();
    let text = influxdb(&r, "a b,c");
    assert!(text.contains(",host=a\\ b\\,c,"), "{text}");
}
