//! End-to-end: a real Prometheus server (Debian's `prometheus`) scrapes the
//! real `strait` binary's `/metrics` every second while real `curl`
//! requests go through it to real Python backends; its HTTP API then
//! answers `histogram_quantile` over Strait's latency buckets per service,
//! and a service's series survive a reload.
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
        Prometheus::scraping(target, "/metrics")
    }

    /// A real Prometheus scraping `path` on `target` every second.
    fn scraping(target: SocketAddr, path: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n- job_name: strait\n  metrics_path: {path}\n\
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

/// `linkerd.yaml` for one router over an `io.l5d.fs` directory;
/// `router_extra` goes into the router (indented by two spaces).
fn config(disco: &Path, dtab: &str, router_extra: &str) -> String {
    format!(
        "admin:\n  ip: 127.0.0.1\n  port: 0\n\
         namers:\n- kind: io.l5d.fs\n  rootDir: {}\n\
         routers:\n- protocol: http\n  label: outgoing\n  dtab: {dtab}\n{router_extra}\
         \x20 servers:\n  - ip: 127.0.0.1\n    port: 0\n",
        disco.display()
    )
}

/// Backends `hello` and `world` behind a running Strait.
struct Mesh {
    _backends: (Backend, Backend),
    disco: tempfile::TempDir,
    conf_dir: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    fn start(router_extra: &str) -> Mesh {
        Mesh::start_with(router_extra, "")
    }

    /// [`Mesh::start`] with `tail` appended to the config (top-level keys).
    fn start_with(router_extra: &str, tail: &str) -> Mesh {
        let (a, b) = (Backend::start("a"), Backend::start("b"));
        let disco = tempfile::tempdir().unwrap();
        write_disco(disco.path(), "hello", &[&a]);
        write_disco(disco.path(), "world", &[&b]);
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("linkerd.yaml");
        let text = config(disco.path(), "/svc => /#/io.l5d.fs;", router_extra) + tail;
        std::fs::write(&conf, text).unwrap();
        let strait = Strait::start(BIN, &conf);
        Mesh {
            _backends: (a, b),
            disco,
            conf_dir,
            strait,
        }
    }

    fn get(&self, host: &str) {
        let r = curl(
            &[
                "-H",
                &format!("Host: {host}"),
                &format!("http://{}/", self.strait.router()),
            ],
            &[],
        );
        assert_eq!(r.status, 200, "{r:?}");
    }

    fn metrics(&self) -> String {
        let r = curl(&[&format!("http://{}/metrics", self.strait.admin)], &[]);
        assert_eq!(r.status, 200, "{r:?}");
        r.body
    }
}

#[test]
fn histogram_quantile_per_service_works_on_a_real_prometheus() {
    let mesh = Mesh::start("");
    let strait = &mesh.strait;
    let prom = Prometheus::start(strait.admin);

    let q = "histogram_quantile(0.99, sum by (le, service) \
             (rate(rt_service_request_latency_seconds_bucket[30s])))";
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        for host in ["hello", "world"] {
            mesh.get(host);
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

#[test]
fn metrics_carry_the_build_and_the_process() {
    let mesh = Mesh::start("");
    let text = mesh.metrics();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_owned(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        });
    let want = format!(
        "strait_build_info{{version=\"{}\", commit=\"{commit}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&want), "{want} in\n{text}");
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(name), "{name} in\n{text}");
    }
}

#[test]
fn a_services_series_survive_a_reload_on_a_real_prometheus() {
    // Idle TTL 30 s: the daemon sweeps every 7.5 s.
    let mesh = Mesh::start("  bindingCache:\n    idleTtlSecs: 30\n");
    let prom = Prometheus::start(mesh.strait.admin);
    mesh.get("hello");
    mesh.get("world");
    // Scraped at least once with both services.
    let deadline = Instant::now() + Duration::from_secs(30);
    while prom
        .query("rt_service_requests_total{service=~\"svc/(hello|world)\"}")
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "never scraped both services");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A reload that changes the router: its bindings go, its services
    // are taken over.
    let conf = mesh.conf_dir.path().join("linkerd.yaml");
    let tmp = conf.with_extension("tmp");
    let dtab = "/svc => /#/io.l5d.fs; /unused => /#/io.l5d.fs;";
    let text = config(
        mesh.disco.path(),
        dtab,
        "  bindingCache:\n    idleTtlSecs: 30\n",
    );
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &conf).unwrap();
    mesh.strait.proc.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mesh.metrics().contains("config_reloads_applied_total 1") {
        assert!(Instant::now() < deadline, "no reload applied");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Two sweeps later (and scraped since), both services are still there,
    // counts unchanged.
    std::thread::sleep(Duration::from_secs(16));
    let text = mesh.metrics();
    for svc in ["svc/hello", "svc/world"] {
        let want = format!("rt_service_requests_total{{rt=\"outgoing\", service=\"{svc}\"}} 1");
        assert!(text.contains(&want), "{want} after the reload:\n{text}");
    }
    let now = prom.query("rt_service_requests_total{service=~\"svc/(hello|world)\"}");
    assert_eq!(
        now.len(),
        2,
        "both series are current in Prometheus: {now:?}"
    );
    let resets = prom.query("sum(resets(rt_service_requests_total[1m]))");
    assert_eq!(
        resets.first().map(|s| s["value"][1].clone()),
        Some("0".into()),
        "no counter reset: {resets:?}"
    );
}

/// Linkerd 1's own Grafana queries, from the `linkerd-examples`
/// repository's `failure-accrual/grafana.json` dashboard (success rate per
/// client, request rate per client), against `/admin/metrics/prometheus`:
/// they match because the client label is `#/io.l5d.fs/hello`, without
/// the leading `/`.
#[test]
fn linkerd_dashboard_queries_return_data_from_the_telemeter_path() {
    let mesh = Mesh::start_with("", "telemetry:\n- kind: io.l5d.prometheus\n");
    let prom = Prometheus::scraping(mesh.strait.admin, "/admin/metrics/prometheus");
    let success = "rate(rt:client:success{client='#/io.l5d.fs/hello'}[10s]) / \
                   (rate(rt:client:failures{client='#/io.l5d.fs/hello'}[10s]) + \
                   rate(rt:client:success{client='#/io.l5d.fs/hello'}[10s]))";
    let total = "irate(rt:client:requests[10s])";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        mesh.get("hello");
        let rate = prom.query(success);
        let requests = prom.query(total);
        let value = |r: &[serde_json::Value]| -> Option<f64> {
            r.first()?["value"][1].as_str()?.parse().ok()
        };
        if let (Some(rate), Some(rps)) = (value(&rate), value(&requests))
            && rate.is_finite()
            && rps > 0.0
        {
            assert_eq!(rate, 1.0, "every request succeeded");
            assert_eq!(
                requests[0]["metric"]["client"], "#/io.l5d.fs/hello",
                "{requests:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Linkerd's dashboard queries found nothing: {rate:?} {requests:?}\n{}",
            prom.proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
