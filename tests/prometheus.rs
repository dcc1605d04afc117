//! End-to-end: a real Prometheus server (Debian's `prometheus`) scrapes the
//! real `strait` binary's `/metrics` every second while real `curl`
//! requests go through it to real Python backends; its HTTP API then
//! answers `histogram_quantile` over Strait's latency buckets per service.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Proc, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

fn write_disco(dir: &Path, name: &str, backends: &[&Backend]) {
    let text: String = backends
        .iter()
        .map(|b| format!("{}\n", b.fs_line()))
        .collect();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus scraping `target`'s `/metrics` every second, its
/// TSDB in a temporary directory.
struct Prometheus {
    _dir: tempfile::TempDir,
    proc: Proc,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n- job_name: strait\n  metrics_path: /metrics\n\
                 \x20 static_configs:\n  - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let proc = Proc::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", conf.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}")),
        );
        let p = Prometheus {
            _dir: dir,
            proc,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = curl(&[&format!("http://{addr}/-/ready")], &[]);
            if r.status == 200 {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready: {r:?}\n{}",
                p.proc.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The result vector of an instant query.
    fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let r = curl(
            &[
                "-G",
                "--data-urlencode",
                &format!("query={q}"),
                &format!("http://{}/api/v1/query", self.addr),
            ],
            &[],
        );
        assert_eq!(r.status, 200, "{q}: {r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

#[test]
fn histogram_quantile_per_service_works_on_a_real_prometheus() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let disco = tempfile::tempdir().unwrap();
    write_disco(disco.path(), "hello", &[&a]);
    write_disco(disco.path(), "world", &[&b]);
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("linkerd.yaml");
    std::fs::write(
        &conf,
        format!(
            "admin:\n  ip: 127.0.0.1\n  port: 0\n\
             namers:\n- kind: io.l5d.fs\n  rootDir: {}\n\
             routers:\n- protocol: http\n  label: outgoing\n  dtab: /svc => /#/io.l5d.fs;\n\
             \x20 servers:\n  - ip: 127.0.0.1\n    port: 0\n",
            disco.path().display()
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &conf);
    let prom = Prometheus::start(strait.admin);

    let q = "histogram_quantile(0.99, sum by (le, service) \
             (rate(rt_service_request_latency_seconds_bucket[30s])))";
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        for host in ["hello", "world"] {
            let r = curl(
                &[
                    "-H",
                    &format!("Host: {host}"),
                    &format!("http://{}/", strait.router()),
                ],
                &[],
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
        let result = prom.query(q);
        let mut per_service: Vec<(String, f64)> = result
            .iter()
            .filter_map(|s| {
                let svc = s["metric"]["service"].as_str()?.to_owned();
                let v: f64 = s["value"][1].as_str()?.parse().ok()?;
                v.is_finite().then_some((svc, v))
            })
            .collect();
        per_service.sort_by(|x, y| x.0.cmp(&y.0));
        if per_service.len() == 2 {
            break per_service;
        }
        assert!(
            Instant::now() < deadline,
            "no p99 per service after a minute of traffic: {result:?}\n{}",
            prom.proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(found[0].0, "svc/hello", "service label without a leading /");
    assert_eq!(found[1].0, "svc/world");
    for (svc, p99) in &found {
        assert!(
            *p99 > 0.0 && *p99 <= 30.0,
            "{svc}: p99 {p99} s is within the buckets"
        );
    }

    // The scrape itself is healthy and the status code is a label.
    let up = prom.query("up{job=\"strait\"}");
    assert_eq!(up.first().map(|s| s["value"][1].clone()), Some("1".into()));
    let ok = prom.query("sum by (service) (rt_service_responses_total{status_code=\"200\"})");
    assert_eq!(ok.len(), 2, "{ok:?}");
}
