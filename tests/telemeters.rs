//! End-to-end: the real `strait` binary with its telemeters, real `curl`
//! traffic through it to a real Python backend.
//!
//! * `io.l5d.statsd`: a UDP socket in the test is the StatsD server; the
//!   datagrams carry Linkerd's names, the right types and the counts of
//!   the requests sent.
//! * `io.l5d.influxdb`: `/admin/metrics/influxdb` parsed back line by line
//!   against InfluxDB's documented line-protocol grammar (measurement,
//!   tags, fields, no timestamp).
//! * `io.l5d.recentRequests`: after 7 requests with `sampleRate: 1.0` and
//!   `capacity: 5`, `/requests.json` lists the 5 latest, newest first,
//!   with their fields; `/requests` serves the page that polls it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// A backend `hello` behind a running Strait with `telemetry`.
struct Mesh {
    backend: Backend,
    _disco: tempfile::TempDir,
    _conf: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    fn start(telemetry: &str) -> Mesh {
        let backend = Backend::start("a");
        for i in 0..10 {
            std::fs::write(backend.dir().join(format!("r{i}")), format!("r{i}\n")).unwrap();
        }
        let disco = tempfile::tempdir().unwrap();
        std::fs::write(disco.path().join("hello"), backend.fs_line() + "\n").unwrap();
        let conf = tempfile::tempdir().unwrap();
        let path = conf.path().join("linkerd.yaml");
        let text = format!(
            "admin:\n  ip: 127.0.0.1\n  port: 0\n\
             namers:\n- kind: io.l5d.fs\n  rootDir: {}\n\
             routers:\n- protocol: http\n  label: outgoing\n  dtab: /svc => /#/io.l5d.fs;\n\
             \x20 servers:\n  - ip: 127.0.0.1\n    port: 0\n\
             telemetry:\n{telemetry}",
            disco.path().display()
        );
        std::fs::write(&path, text).unwrap();
        let strait = Strait::start(BIN, &path);
        Mesh {
            backend,
            _disco: disco,
            _conf: conf,
            strait,
        }
    }

    fn get(&self, path: &str) {
        let r = curl(
            &[
                "-H",
                "Host: hello",
                &format!("http://{}{path}", self.strait.router()),
            ],
            &[],
        );
        assert_eq!(r.status, 200, "{r:?}");
    }

    fn admin(&self, path: &str) -> strait_test_kit::Response {
        curl(&[&format!("http://{}{path}", self.strait.admin)], &[])
    }
}

/// One StatsD line: `name:value|type[|@rate]`.
#[derive(Debug)]
struct Stat {
    name: String,
    value: f64,
    kind: String,
    rate: Option<f64>,
}

fn parse_stat(line: &str) -> Stat {
    let (name, rest) = line.split_once(':').expect("name:value");
    let mut parts = rest.split('|');
    let value = parts.next().unwrap().parse().expect("a number");
    let kind = parts.next().expect("a type").to_owned();
    let rate = parts
        .next()
        .map(|r| r.strip_prefix('@').expect("@rate").parse().unwrap());
    assert!(parts.next().is_none(), "{line}");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'),
        "Linkerd's StatsD names hold [A-Za-z0-9_.] only: {line}"
    );
    Stat {
        name: name.to_owned(),
        value,
        kind,
        rate,
    }
}

#[test]
fn statsd_receives_linkerd_names_counters_gauges_and_timers() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = udp.local_addr().unwrap().port();
    let mesh = Mesh::start(&format!(
        "- kind: io.l5d.statsd\n  experimental: true\n  prefix: l5d\n  hostname: 127.0.0.1\n  \
         port: {port}\n  gaugeIntervalMs: 200\n  sampleRate: 1.0\n"
    ));
    for i in 0..8 {
        mesh.get(&format!("/r{i}"));
    }
    let svc = "l5d.rt.outgoing.service.svc.hello";
    let client = "l5d.rt.outgoing.client._.io_l5d_fs.hello";
    let mut counters: BTreeMap<String, f64> = BTreeMap::new();
    let mut gauges: BTreeMap<String, f64> = BTreeMap::new();
    let mut timers: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 65536];
    let want_counters = [
        format!("{svc}.requests"),
        format!("{client}.requests"),
        format!("{client}.status.200"),
    ];
    while Instant::now() < deadline
        && (want_counters
            .iter()
            .any(|c| counters.get(c).copied().unwrap_or(0.0) < 8.0)
            || !gauges.contains_key(&format!("{client}.loadbalancer.size"))
            || timers
                .get(&format!("{svc}.request_latency_ms"))
                .map_or(0, Vec::len)
                < 8)
    {
        let Ok(n) = udp.recv(&mut buf) else { continue };
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(n <= 1432, "a datagram fits an Ethernet frame: {n} bytes");
        for line in text.lines() {
            let s = parse_stat(line);
            match s.kind.as_str() {
                "c" => *counters.entry(s.name).or_default() += s.value,
                "g" => {
                    gauges.insert(s.name, s.value);
                }
                "ms" => {
                    assert_eq!(s.rate, None, "sampleRate 1.0 carries no @rate: {line}");
                    timers.entry(s.name).or_default().push(s.value);
                }
                other => panic!("unexpected StatsD type {other}: {line}"),
            }
        }
    }
    assert_eq!(
        counters.get(&format!("{svc}.requests")),
        Some(&8.0),
        "the service's request counter adds up to the requests sent: {counters:#?}"
    );
    assert_eq!(
        counters.get(&format!("{client}.requests")),
        Some(&8.0),
        "the client's, with Linkerd's `#/io.l5d.fs` → `_.io_l5d_fs`: {counters:#?}"
    );
    assert_eq!(
        counters.get(&format!("{client}.status.200")),
        Some(&8.0),
        "{counters:#?}"
    );
    assert_eq!(
        gauges.get(&format!("{client}.loadbalancer.size")),
        Some(&1.0),
        "gauges every interval: {gauges:#?}"
    );
    let lat = &timers[&format!("{svc}.request_latency_ms")];
    assert_eq!(lat.len(), 8, "one timer per request at rate 1: {timers:#?}");
    assert!(
        lat.iter().all(|v| (0.0..5000.0).contains(v)),
        "plausible latencies in ms: {lat:?}"
    );
}

/// One line of InfluxDB line protocol, checked against its grammar
/// (<https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/>):
/// `measurement[,tag=value...] field=value[,field=value...] [timestamp]`,
/// with `\` escaping commas, spaces and `=` in keys and tag values.
#[derive(Debug)]
struct Line {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, f64)>,
    timestamp: Option<i64>,
}

/// Splits `s` at unescaped `sep`s, escapes kept.
fn split_raw(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let n = chars.next().expect("an escape escapes something");
            out.last_mut().unwrap().extend([c, n]);
        } else if c == sep {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
    }
    out
}

/// `key=value` split at the unescaped `=`, both unescaped.
fn pair(s: &str) -> (String, String) {
    let parts = split_raw(s, '=');
    assert_eq!(parts.len(), 2, "key=value: {s}");
    let unescape = |p: &str| {
        let mut out = String::new();
        let mut chars = p.chars();
        while let Some(c) = chars.next() {
            out.push(if c == '\\' { chars.next().unwrap() } else { c });
        }
        out
    };
    (unescape(&parts[0]), unescape(&parts[1]))
}

fn parse_line(line: &str) -> Line {
    let sections = split_raw(line, ' ');
    assert!(
        (2..=3).contains(&sections.len()),
        "measurement+tags, fields, [timestamp]: {line}"
    );
    let mut head = split_raw(&sections[0], ',').into_iter();
    let measurement = head.next().unwrap();
    assert!(!measurement.is_empty(), "{line}");
    let tags: Vec<(String, String)> = head
        .map(|t| {
            let (k, v) = pair(&t);
            assert!(!k.is_empty() && !v.is_empty(), "{line}");
            (k, v)
        })
        .collect();
    let mut sorted = tags.clone();
    sorted.sort();
    assert_eq!(
        tags, sorted,
        "tags in key order (InfluxDB's advice): {line}"
    );
    let fields: Vec<(String, f64)> = split_raw(&sections[1], ',')
        .into_iter()
        .map(|f| {
            let (k, v) = pair(&f);
            assert!(!k.is_empty(), "{line}");
            // Numbers only here: a float, or an integer without `i` (a
            // float to InfluxDB, as Linkerd wrote them).
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')),
                "a numeric field value: {f} in {line}"
            );
            let n: f64 = v.parse().expect("a number");
            (k, n)
        })
        .collect();
    assert!(!fields.is_empty(), "{line}");
    let timestamp = sections.get(2).map(|t| t.parse().expect("ns timestamp"));
    Line {
        measurement,
        tags,
        fields,
        timestamp,
    }
}

#[test]
fn influxdb_serves_line_protocol_with_linkerds_measurements_and_tags() {
    let mesh = Mesh::start("- kind: io.l5d.influxdb\n");
    for i in 0..5 {
        mesh.get(&format!("/r{i}"));
    }
    let r = mesh.admin("/admin/metrics/influxdb");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let host = mesh.strait.admin.to_string();
    let lines: Vec<Line> = r.body.lines().map(parse_line).collect();
    assert!(lines.len() > 3, "{}", r.body);
    for l in &lines {
        assert_eq!(l.timestamp, None, "no timestamp, as Linkerd: {l:?}");
        assert!(
            l.measurement
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_'),
            "{l:?}"
        );
        assert!(
            l.tags.iter().any(|(k, v)| k == "host" && *v == host),
            "every line has host=<the scrape's Host>: {l:?}"
        );
    }
    let find = |m: &str, tag: (&str, &str)| {
        lines
            .iter()
            .find(|l| {
                l.measurement == m
                    && l.tags.iter().any(|(k, v)| k == tag.0 && v == tag.1)
                    && l.tags.iter().any(|(k, v)| k == "rt" && v == "outgoing")
            })
            .unwrap_or_else(|| panic!("no {m} line with {tag:?} in\n{}", r.body))
    };
    let field = |l: &Line, name: &str| {
        l.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no field {name} in {l:?}"))
    };
    let svc = find("rt:service", ("service", "svc/hello"));
    assert_eq!(field(svc, "requests"), 5.0);
    assert_eq!(field(svc, "success"), 5.0);
    let client = find("rt:client", ("client", "#/io.l5d.fs/hello"));
    assert_eq!(field(client, "requests"), 5.0);
    let status = find("rt:client:status", ("client", "#/io.l5d.fs/hello"));
    assert_eq!(field(status, "200"), 5.0);
    let lb = find("rt:client:loadbalancer", ("client", "#/io.l5d.fs/hello"));
    assert_eq!(field(lb, "size"), 1.0);
    let server = lines
        .iter()
        .find(|l| l.measurement == "rt:server")
        .expect("a server line");
    assert!(
        server
            .tags
            .iter()
            .any(|(k, v)| k == "server" && v.starts_with("127.0.0.1/")),
        "{server:?}"
    );
    assert_eq!(field(server, "requests"), 5.0);
    // A Host header of our own choosing is the tag.
    let r = curl(
        &[
            "-H",
            "Host: scraper:1",
            &format!("http://{}/admin/metrics/influxdb", mesh.strait.admin),
        ],
        &[],
    );
    assert!(r.body.contains(",host=scraper:1"), "{}", r.body);
}

#[test]
fn influxdb_and_requests_are_404_unless_configured() {
    let mesh = Mesh::start("- kind: io.l5d.prometheus\n");
    for p in ["/admin/metrics/influxdb", "/requests", "/requests.json"] {
        let r = mesh.admin(p);
        assert_eq!(r.status, 404, "{p}: {r:?}");
        assert!(r.body.contains("telemeter"), "the 404 says which: {r:?}");
    }
}

#[test]
fn recent_requests_lists_the_latest_sampled_requests() {
    let mesh = Mesh::start("- kind: io.l5d.recentRequests\n  sampleRate: 1.0\n  capacity: 5\n");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for i in 0..7 {
        mesh.get(&format!("/r{i}?n={i}"));
    }
    let r = mesh.admin("/requests.json");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["capacity"], 5);
    assert_eq!(v["sampleRate"], 1.0);
    let reqs = v["requests"].as_array().unwrap();
    let uris: Vec<&str> = reqs.iter().map(|e| e["uri"].as_str().unwrap()).collect();
    assert_eq!(
        uris,
        ["/r6?n=6", "/r5?n=5", "/r4?n=4", "/r3?n=3", "/r2?n=2"],
        "the 5 latest, newest first"
    );
    let server = format!("127.0.0.1/{}", mesh.strait.router().port());
    for e in reqs {
        assert_eq!(e["method"], "GET", "{e}");
        assert_eq!(e["host"], "hello", "{e}");
        assert_eq!(e["router"], "outgoing", "{e}");
        assert_eq!(e["server"], server.as_str(), "{e}");
        assert_eq!(e["logicalName"], "/svc/hello", "{e}");
        assert_eq!(e["concreteName"], "/#/io.l5d.fs/hello", "{e}");
        assert_eq!(e["endpoint"], mesh.backend.addr.to_string().as_str(), "{e}");
        assert_eq!(e["status"], 200, "{e}");
        assert!(
            e["source"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{e}"
        );
        assert_eq!(e["traceId"].as_str().unwrap().len(), 16, "{e}");
        let ms = e["durationMs"].as_f64().unwrap();
        assert!(ms > 0.0 && ms < 10_000.0, "{e}");
        let ts = e["timestamp"].as_u64().unwrap();
        assert!(ts >= before && ts < before + 60_000, "{e}");
    }
    let page = mesh.admin("/requests");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for want in [
        "<table",
        "Logical Name",
        "Concrete Name",
        "Destination",
        "/files/requests.js",
    ] {
        assert!(page.body.contains(want), "{want}:\n{}", page.body);
    }
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no CDN: everything is served by the admin"
    );
    let js = mesh.admin("/files/requests.js");
    assert_eq!(js.status, 200);
    assert!(
        js.body.contains("/requests.json"),
        "the page polls the JSON"
    );
    let index = mesh.admin("/admin/index.txt");
    assert!(
        index.body.lines().any(|l| l == "/requests"),
        "{}",
        index.body
    );
}
