//! The metrics telemeters besides Prometheus, reading the registry off the
//! request path:
//!
//! * `io.l5d.influxdb`: InfluxDB line protocol on the admin's
//!   `/admin/metrics/influxdb`, for Telegraf to pull (Linkerd's
//!   `InfluxDbTelemeter`): one line per tree node with metrics directly
//!   under it, the router, service, client and server lifted into tags.
//! * `io.l5d.statsd`: StatsD datagrams over UDP, Linkerd's names, sent
//!   every `gaugeIntervalMs` by one background task: counters as the
//!   change since the last send (`|c`), gauges (`|g`), and latency
//!   histograms as timers (`|ms|@rate`) rebuilt from the histogram's
//!   change, `sampleRate` of its samples. Linkerd sent counters and timers
//!   as each event happened, sampled at `sampleRate`; sending changes
//!   keeps the request path free of sockets, and counts exactly.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use strait_router::stats::{Histogram, Reading, Registry, Scope};
use tokio::net::UdpSocket;
use tokio::sync::watch;

// ------------------------------------------------------------ InfluxDB

/// `/admin/metrics/influxdb`: every metric of `registry`, `host` (the
/// scrape's `Host`, or `none`) as a tag of every line.
pub fn influxdb(registry: &Registry, host: &str) -> String {
    type Tags = Vec<(&'static str, String)>;
    let mut lines: BTreeMap<(String, Tags), BTreeMap<String, String>> = BTreeMap::new();
    registry.visit(|scope, name, reading| {
        let mut fields: Vec<(String, String)> = Vec::new();
        let leaf = name.rsplit('/').next().unwrap_or(name);
        match reading {
            Reading::Counter(c) => fields.push((leaf.to_owned(), c.to_string())),
            Reading::Gauge(g) => fields.push((leaf.to_owned(), format!("{:?}", g as f64))),
            Reading::Histogram(h) => {
                // The last closed minute, as Linkerd; nothing before it.
                let Some(s) = h.last_minute() else {
                    return;
                };
                let avg = if s.count == 0 {
                    0.0
                } else {
                    s.sum_ms / s.count as f64
                };
                // Indices into `LINKERD_QUANTILES` (0, .5, .9, .95, .99, .999, .9999, 1).
                let q = |i: usize| s.quantiles.get(i).copied().unwrap_or(0.0);
                for (suffix, v) in [
                    ("count", s.count.to_string()),
                    ("sum", num(s.sum_ms)),
                    ("avg", format!("{avg:?}")),
                    ("min", num(s.min_ms)),
                    ("max", num(s.max_ms)),
                    ("p50", num(q(1))),
                    ("p90", num(q(2))),
                    ("p95", num(q(3))),
                    ("p99", num(q(4))),
                    ("p999", num(q(5))),
                    ("p9999", num(q(6))),
                ] {
                    fields.push((format!("{leaf}_{suffix}"), v));
                }
            }
        }
        let mut node = elements(scope);
        let parts: Vec<&str> = name.split('/').collect();
        node.extend(
            parts[..parts.len().saturating_sub(1)]
                .iter()
                .map(|p| (*p).to_owned()),
        );
        let (measurement, mut tags) = lift(node);
        tags.push(("host", host.to_owned()));
        tags.sort();
        let entry = lines.entry((measurement, tags)).or_default();
        for (k, v) in fields {
            entry.insert(k, v);
        }
    });
    let mut out = String::new();
    for ((measurement, tags), fields) in lines {
        out.push_str(&measurement);
        for (k, v) in tags {
            let _ = write!(out, ",{}={}", escape(k), escape(&v));
        }
        let mut sep = ' ';
        for (k, v) in fields {
            let _ = write!(out, "{sep}{}={v}", escape(&k));
            sep = ',';
        }
        out.push('\n');
    }
    out
}

/// A float as Linkerd printed its integer statistics: `3` for 3.0, else
/// the decimals.
fn num(v: f64) -> String {
    format!("{v}")
}

/// Line protocol's escapes of tag keys, tag values and field keys (a
/// comma, an equals sign, a space). Linkerd wrote them unescaped; Strait's
/// names never hold them, so this changes nothing but a broken line.
fn escape(s: &str) -> String {
    if !s.contains([',', '=', ' ']) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The scope's elements in Linkerd's metrics tree: a service name or a
/// client id is one element, without its leading `/`.
fn elements(scope: &Scope) -> Vec<String> {
    let strip = |v: &str| v.strip_prefix('/').unwrap_or(v).to_owned();
    match scope {
        Scope::Root(s) => s
            .split('/')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        Scope::Server { router, addr } => {
            vec![
                "rt".into(),
                router.to_string(),
                "server".into(),
                addr.to_string(),
            ]
        }
        Scope::Service { router, name } => {
            vec![
                "rt".into(),
                router.to_string(),
                "service".into(),
                strip(name),
            ]
        }
        Scope::Client { router, id } => {
            vec!["rt".into(), router.to_string(), "client".into(), strip(id)]
        }
        Scope::Router { router } => vec!["rt".into(), router.to_string()],
    }
}

/// Linkerd's lifting of `rt/<router>`, `rt/service/<path>`,
/// `rt/client/<id>`, `rt/client/service/<path>` and `rt/server/<srv>` into
/// tags, walking the node's path as its tree walk does; the measurement is
/// what is left, joined with `:`, characters outside `[a-zA-Z0-9:]` as
/// `_`, `root` when nothing is.
fn lift(node: Vec<String>) -> (String, Vec<(&'static str, String)>) {
    let mut prefix: Vec<String> = Vec::new();
    let mut tags: Vec<(&'static str, String)> = Vec::new();
    let has = |tags: &[(&str, String)], k: &str| tags.iter().any(|(t, _)| *t == k);
    for e in node {
        prefix.push(e);
        let p: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let lifted = match p.as_slice() {
            ["rt", v] if !has(&tags, "rt") => Some(("rt", (*v).to_owned())),
            ["rt", "service", v] if !has(&tags, "service") => Some(("service", (*v).to_owned())),
            ["rt", "client", v] if !has(&tags, "client") => Some(("client", (*v).to_owned())),
            ["rt", "client", "service", v] if !has(&tags, "service") => {
                Some(("service", (*v).to_owned()))
            }
            ["rt", "server", v] if !has(&tags, "server") => Some(("server", (*v).to_owned())),
            _ => None,
        };
        if let Some(tag) = lifted {
            prefix.pop();
            tags.push(tag);
        }
    }
    let measurement = if prefix.is_empty() {
        "root".to_owned()
    } else {
        prefix
            .join(":")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == ':' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    (measurement, tags)
}

// ------------------------------------------------------------ StatsD

/// `io.l5d.statsd`'s settings.
#[derive(Clone, Debug, PartialEq)]
pub struct StatsdParams {
    /// `prefix` (`linkerd`).
    pub prefix: String,
    /// `hostname`.
    pub hostname: String,
    /// `port`.
    pub port: u16,
    /// `gaugeIntervalMs`.
    pub interval: Duration,
    /// `sampleRate`: the fraction of latency samples sent as timers.
    pub sample_rate: f64,
}

/// The largest datagram sent: a 1500-byte Ethernet frame's payload
/// under IPv4/UDP, less headroom (StatsD's own advice).
const MAX_DATAGRAM: usize = 1432;

/// The most timer lines one histogram sends per interval; beyond, the
/// rate each line carries is lowered to match.
const MAX_TIMER_LINES: f64 = 1000.0;

/// Linkerd's StatsD name of a flat metric name: characters outside
/// `[/A-Za-z0-9]` as `_`, `//` as `/` (once), `/` as `.`, after
/// `<prefix>.`.
pub fn statsd_name(prefix: &str, flat: &str) -> String {
    let cleaned: String = flat
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dotted = cleaned.replace("//", "/").replace('/', ".");
    if prefix.is_empty() {
        dotted
    } else {
        format!("{prefix}.{dotted}")
    }
}

/// What the StatsD telemeter sent last, to send what changed since.
#[derive(Debug)]
pub struct Statsd {
    prefix: String,
    sample_rate: f64,
    counters: HashMap<(Scope, String), u64>,
    buckets: HashMap<(Scope, String), HashMap<usize, u64>>,
    /// Each histogram's fraction of a timer line not sent yet.
    carry: HashMap<(Scope, String), f64>,
}

impl Statsd {
    /// Nothing sent yet.
    pub fn new(prefix: &str, sample_rate: f64) -> Statsd {
        Statsd {
            prefix: prefix.to_owned(),
            sample_rate: sample_rate.clamp(0.0, 1.0),
            counters: HashMap::new(),
            buckets: HashMap::new(),
            carry: HashMap::new(),
        }
    }

    /// The lines of one interval: every counter that changed, every
    /// gauge, and `sampleRate` of the latency samples recorded since.
    pub fn lines(&mut self, registry: &Registry) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen_counters = HashMap::new();
        let mut seen_buckets = HashMap::new();
        let rate = self.sample_rate;
        registry.visit(|scope, name, reading| {
            let key = (scope.clone(), name.to_owned());
            let stat = statsd_name(&self.prefix, &scope.flat_name(name));
            match reading {
                Reading::Counter(now) => {
                    // A counter that went back was dropped and made again.
                    let before = self.counters.get(&key).copied().unwrap_or(0);
                    let delta = if now >= before { now - before } else { now };
                    if delta > 0 {
                        out.push(format!("{stat}:{delta}|c"));
                    }
                    seen_counters.insert(key, now);
                }
                Reading::Gauge(v) => {
                    // A signed gauge value is a change in StatsD: a
                    // negative value is set from 0.
                    if v < 0 {
                        out.push(format!("{stat}:0|g"));
                    }
                    out.push(format!("{stat}:{v}|g"));
                }
                Reading::Histogram(h) => {
                    let now: HashMap<usize, u64> = h.bucket_counts().into_iter().collect();
                    if rate > 0.0 {
                        let before = self.buckets.get(&key);
                        let carry = self.carry.entry(key.clone()).or_insert(0.0);
                        timers(&stat, &now, before, rate, carry, &mut out);
                    }
                    seen_buckets.insert(key, now);
                }
            }
        });
        // Metrics no longer registered are forgotten.
        self.carry.retain(|k, _| seen_buckets.contains_key(k));
        self.counters = seen_counters;
        self.buckets = seen_buckets;
        out
    }
}

/// Timer lines for the samples a histogram gained: per bucket, `rate` of
/// its new samples (the fraction carried between intervals), each line
/// the bucket's value with `@rate` so the server counts them all.
fn timers(
    stat: &str,
    now: &HashMap<usize, u64>,
    before: Option<&HashMap<usize, u64>>,
    rate: f64,
    carry: &mut f64,
    out: &mut Vec<String>,
) {
    let mut deltas: Vec<(usize, u64)> = now
        .iter()
        .map(|(i, n)| {
            let b = before.and_then(|b| b.get(i)).copied().unwrap_or(0);
            (*i, if *n >= b { n - b } else { *n })
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    deltas.sort_unstable();
    let total: u64 = deltas.iter().map(|(_, d)| d).sum();
    if total == 0 {
        return;
    }
    let expected = total as f64 * rate;
    let rate = if expected > MAX_TIMER_LINES {
        rate * MAX_TIMER_LINES / expected
    } else {
        rate
    };
    let at = if rate >= 1.0 {
        String::new()
    } else {
        format!("|@{rate}")
    };
    for (i, d) in deltas {
        let want = d as f64 * rate + *carry;
        let k = want.floor();
        *carry = want - k;
        let value = Histogram::bucket_ms(i);
        for _ in 0..(k as u64) {
            out.push(format!("{stat}:{value}|ms{at}"));
        }
    }
}

/// Lines packed into datagrams of at most [`MAX_DATAGRAM`] bytes, one per
/// line (StatsD's multi-metric packets).
pub fn datagrams(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for l in lines {
        if !cur.is_empty() && cur.len() + 1 + l.len() > MAX_DATAGRAM {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(l);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Sends the registry's metrics to the StatsD server every interval until
/// `stop` (or the daemon's `shutdown`) says so, then once more.
pub async fn run_statsd(
    params: StatsdParams,
    registry: Registry,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Linkerd's warning, in substance.
    tracing::warn!(
        host = %params.hostname,
        port = params.port,
        "the io.l5d.statsd telemeter is experimental and deprecated in Linkerd 1; \
         Prometheus (/metrics) or io.l5d.influxdb are the supported ways"
    );
    let mut state = Statsd::new(&params.prefix, params.sample_rate);
    let mut every = tokio::time::interval(params.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let mut socket: Option<UdpSocket> = None;
    let mut failing = false;
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            _ = stop.wait_for(|v| *v) => true,
            _ = shutdown.wait_for(|v| *v) => true,
        };
        let lines = state.lines(&registry);
        if socket.is_none() {
            match connect(&params.hostname, params.port).await {
                Ok(s) => {
                    failing = false;
                    socket = Some(s);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(host = %params.hostname, port = params.port, error = %e,
                            "io.l5d.statsd: cannot reach the StatsD server; trying every interval");
                    }
                    failing = true;
                }
            }
        }
        if let Some(s) = &socket {
            for d in datagrams(&lines) {
                if let Err(e) = s.send(d.as_bytes()).await {
                    // A refused datagram (nobody listening yet) is not
                    // worth more than a debug line.
                    tracing::debug!(error = %e, "io.l5d.statsd: send failed");
                }
            }
        }
        if last {
            return;
        }
    }
}

async fn connect(host: &str, port: u16) -> std::io::Result<UdpSocket> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let local: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let s = UdpSocket::bind(local).await?;
    s.connect(addr).await?;
    Ok(s)
}

#[cfg(test)]
#[path = "telemeters_tests.rs"]
mod tests;
