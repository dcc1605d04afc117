//! Counters, gauges and latency histograms under Linkerd 1's names.
//!
//! Every metric is an atomic owned by the thing it measures (a server, a
//! service, a client) and registered once by name; the request path only
//! touches atomics. The registry renders the same values two ways: the flat
//! JSON of `/admin/metrics.json` (`rt/http/service/svc/hello/requests`) and
//! Prometheus text with Linkerd's label mapping
//! (`rt:service:requests{rt="http", service="svc/hello"}`: as Linkerd 1's
//! routers, label values are the scope elements without the leading `/`).
//! Prometheus text comes in two styles: Linkerd's names
//! ([`PromStyle::Linkerd`]), whose latencies are summaries of the last
//! closed minute ([`Registry::roll_minute`]), and Prometheus' own
//! ([`PromStyle::Conventional`]), whose latencies are cumulative
//! histograms with fixed buckets ([`PROM_BOUNDS_US`]) for
//! `histogram_quantile`. A latency sample costs a handful of relaxed
//! atomic operations, no lock and no allocation.
//!
//! Why not `metrics-exporter-prometheus`: it renders only Prometheus text,
//! and the admin must also serve Linkerd's flat JSON from the same values;
//! counting twice on the hot path to feed two exporters would cost more than
//! this file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// Where a metric lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A plain slash-separated scope, e.g. `namer/io.l5d.fs` or `config`.
    Root(Arc<str>),
    /// `rt/<router>/server/<ip>/<port>`.
    Server {
        /// Router label.
        router: Arc<str>,
        /// `ip/port`.
        addr: Arc<str>,
    },
    /// `rt/<router>/service/<logical name>`.
    Service {
        /// Router label.
        router: Arc<str>,
        /// The logical name, e.g. `/svc/hello`.
        name: Arc<str>,
    },
    /// `rt/<router>/client/<concrete id>`.
    Client {
        /// Router label.
        router: Arc<str>,
        /// The concrete id, e.g. `/#/io.l5d.fs/hello`.
        id: Arc<str>,
    },
    /// `rt/<router>` itself (its `originator` gauge).
    Router {
        /// Router label.
        router: Arc<str>,
    },
}

impl Scope {
    /// The metric's flat name, as `/admin/metrics.json` shows it
    /// (`rt/http/service/svc/hello/requests`).
    pub fn flat_name(&self, name: &str) -> String {
        self.flat(name)
    }

    fn flat(&self, name: &str) -> String {
        match self {
            Scope::Root(s) if s.is_empty() => name.to_owned(),
            Scope::Root(s) => format!("{s}/{name}"),
            Scope::Server { router, addr } => format!("rt/{router}/server/{addr}/{name}"),
            Scope::Service { router, name: n } => {
                format!("rt/{router}/service/{}/{name}", n.trim_start_matches('/'))
            }
            Scope::Client { router, id } => {
                format!("rt/{router}/client/{}/{name}", id.trim_start_matches('/'))
            }
            Scope::Router { router } => format!("rt/{router}/{name}"),
        }
    }

    /// The metric's scope kind and name without instance names, for help
    /// texts (`rt/service/requests`).
    fn generic(&self, name: &str) -> String {
        match self {
            Scope::Root(s) if s.is_empty() => name.to_owned(),
            Scope::Root(s) => format!("{s}/{name}"),
            Scope::Server { .. } => format!("rt/server/{name}"),
            Scope::Service { .. } => format!("rt/service/{name}"),
            Scope::Client { .. } => format!("rt/client/{name}"),
            Scope::Router { .. } => format!("rt/{name}"),
        }
    }

    /// Prometheus name and labels (Linkerd 1's `PrometheusTelemeter`).
    fn prometheus(&self, name: &str, prefix: &str) -> (String, String) {
        let (base, labels) = match self {
            Scope::Root(s) if s.is_empty() => (name.to_owned(), String::new()),
            Scope::Root(s) => (format!("{s}/{name}"), String::new()),
            Scope::Server { router, addr } => (
                format!("rt/server/{name}"),
                format!(
                    "rt=\"{}\", server=\"{}\"",
                    escape_label(router),
                    escape_label(addr)
                ),
            ),
            Scope::Service { router, name: n } => (
                format!("rt/service/{name}"),
                format!(
                    "rt=\"{}\", service=\"{}\"",
                    escape_label(router),
                    escape_label(label_value(n))
                ),
            ),
            Scope::Client { router, id } => (
                format!("rt/client/{name}"),
                format!(
                    "rt=\"{}\", client=\"{}\"",
                    escape_label(router),
                    escape_label(label_value(id))
                ),
            ),
            Scope::Router { router } => (
                format!("rt/{name}"),
                format!("rt=\"{}\"", escape_label(router)),
            ),
        };
        (format!("{prefix}{}", sanitize(&base)), labels)
    }
}

/// Linkerd: segments joined with `:`, other characters than `[a-zA-Z0-9:]`
/// replaced by `_`.
fn sanitize(flat: &str) -> String {
    flat.chars()
        .map(|c| match c {
            '/' => ':',
            c if c.is_ascii_alphanumeric() || c == ':' => c,
            _ => '_',
        })
        .collect()
}

/// A service name or client id as a Prometheus label value: one leading
/// `/` stripped, as Linkerd 1's routers scope them
/// (`scope("service", path.show.stripPrefix("/"))`): `/svc/hello` →
/// `svc/hello`, `/#/io.l5d.consul/dc1/hello` → `#/io.l5d.consul/dc1/hello`.
fn label_value(v: &str) -> &str {
    v.strip_prefix('/').unwrap_or(v)
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }
    /// Adds `d` (may be negative).
    #[inline]
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }

    /// Counts one more in flight until the returned guard drops: however
    /// the work ends (finished, failed, its future dropped by a timeout or
    /// a client that went away), the count comes back down.
    #[inline]
    pub fn enter(&self) -> InFlight<'_> {
        self.add(1);
        InFlight(self)
    }
}

/// One unit of a [`Gauge`], given back on drop.
#[derive(Debug)]
#[must_use = "the count goes back down when the guard drops"]
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// Sub-buckets per power of two: values are kept to within 1/16 (~6 %).
const SUB: usize = 16;
const BUCKETS: usize = 40 * SUB;

/// Powers of two covered (values past the last land in its top bucket).
const GROUPS: usize = BUCKETS / SUB;

/// Upper bounds (inclusive, in µs) of the Prometheus histogram buckets of
/// every latency on `/metrics`: chosen for a proxy, from 100 µs to 30 s.
pub const PROM_BOUNDS_US: [u64; 17] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// [`PROM_BOUNDS_US`] as Prometheus `le` label values (seconds), then
/// `+Inf`.
pub const PROM_LE: [&str; 18] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf",
];

/// The Prometheus bucket of `us` microseconds: the first bound it does not
/// exceed, or the last slot (`+Inf`).
#[inline]
fn prom_bucket_of(us: u64) -> usize {
    let mut i = 0;
    while i < PROM_BOUNDS_US.len() && us > PROM_BOUNDS_US[i] {
        i += 1;
    }
    i
}

/// A latency histogram in microseconds with ~6 % resolution, cumulative
/// since start, reported in milliseconds. Its buckets are allocated a power
/// of two at a time when a value first lands there: latencies cluster in a
/// few powers of two, and a router keeps three histograms per name.
///
/// Alongside, fixed Prometheus buckets ([`PROM_BOUNDS_US`]), also
/// cumulative since start, for `histogram_quantile` on `/metrics`.
#[derive(Debug)]
pub struct Histogram {
    groups: [OnceLock<Box<[AtomicU64; SUB]>>; GROUPS],
    /// Per-bucket (not yet cumulative) counts of the Prometheus buckets.
    prom: [AtomicU64; PROM_LE.len()],
    /// The last closed minute, for Linkerd's names.
    minute: std::sync::Mutex<Minute>,
    /// The largest and smallest samples (µs) of the minute going on.
    minute_max_us: AtomicU64,
    minute_min_us: AtomicU64,
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
    min_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            groups: std::array::from_fn(|_| OnceLock::new()),
            prom: std::array::from_fn(|_| AtomicU64::new(0)),
            minute: std::sync::Mutex::default(),
            minute_max_us: AtomicU64::new(0),
            minute_min_us: AtomicU64::new(u64::MAX),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let log = 63 - v.leading_zeros() as usize; // >= 4
    let shift = log - 4;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    ((log - 3) * SUB + sub).min(BUCKETS - 1)
}

fn bucket_floor(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let log = i / SUB + 3;
    let sub = (i % SUB) as u64;
    (SUB as u64 | sub) << (log - 4)
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let b = bucket_of(us);
        self.groups[b / SUB].get_or_init(Box::default)[b % SUB].fetch_add(1, Relaxed);
        if let Some(slot) = self.prom.get(prom_bucket_of(us)) {
            slot.fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        // The extremes rarely move: a plain load first, the locked
        // read-modify-write (a compare-and-swap loop) only when they do.
        for (m, higher) in [
            (&self.max_us, true),
            (&self.min_us, false),
            (&self.minute_max_us, true),
            (&self.minute_min_us, false),
        ] {
            let now = m.load(Relaxed);
            if higher && us > now {
                m.fetch_max(us, Relaxed);
            } else if !higher && us < now {
                m.fetch_min(us, Relaxed);
            }
        }
    }

    /// The Prometheus buckets, cumulative (`le` order, the last is
    /// `+Inf` and so the count), and the sum in seconds.
    pub fn prom_buckets(&self) -> ([u64; PROM_LE.len()], f64) {
        let mut out = [0u64; PROM_LE.len()];
        let mut seen = 0;
        for (o, b) in out.iter_mut().zip(&self.prom) {
            seen += b.load(Relaxed);
            *o = seen;
        }
        (out, self.sum_us.load(Relaxed) as f64 / 1_000_000.0)
    }

    /// Count, sum (ms), and the requested quantiles (ms).
    pub fn snapshot(&self, quantiles: &[f64]) -> HistogramSnapshot {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        let max = self.max_us.load(Relaxed);
        let min = if total == 0 {
            0
        } else {
            self.min_us.load(Relaxed)
        };
        let qs = quantiles
            .iter()
            .map(|&q| {
                if total == 0 {
                    return 0.0;
                }
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                for (i, c) in counts.iter().enumerate() {
                    seen += c;
                    if seen >= rank {
                        let v = bucket_floor(i).clamp(min, max);
                        return v as f64 / 1000.0;
                    }
                }
                max as f64 / 1000.0
            })
            .collect();
        HistogramSnapshot {
            count: total,
            sum_ms: self.sum_us.load(Relaxed) as f64 / 1000.0,
            min_ms: min as f64 / 1000.0,
            max_ms: max as f64 / 1000.0,
            quantiles: qs,
        }
    }
}

impl Histogram {
    /// The fine bucket counts, cumulative since start.
    fn counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; BUCKETS];
        for (group, out) in self.groups.iter().zip(counts.chunks_mut(SUB)) {
            if let Some(group) = group.get() {
                for (o, b) in out.iter_mut().zip(group.iter()) {
                    *o = b.load(Relaxed);
                }
            }
        }
        counts
    }

    /// The fine buckets with samples: index and count, cumulative since
    /// start (for exporters that send what changed, as StatsD timers).
    pub fn bucket_counts(&self) -> Vec<(usize, u64)> {
        self.counts()
            .into_iter()
            .enumerate()
            .filter(|(_, c)| *c > 0)
            .collect()
    }

    /// The value a fine bucket stands for: its lower bound, in ms.
    pub fn bucket_ms(i: usize) -> f64 {
        bucket_floor(i) as f64 / 1000.0
    }

    /// Closes a minute, as Linkerd 1 does every minute: what was recorded
    /// since the previous call becomes [`Histogram::last_minute`]. Min and
    /// max are exact, quantiles bucket floors within them (~6 %).
    pub fn roll_minute(&self, quantiles: &[f64]) {
        let now = self.counts();
        let sum_us = self.sum_us.load(Relaxed);
        let mut m = self.minute.lock().unwrap_or_else(|e| e.into_inner());
        let delta: Vec<u64> = now
            .iter()
            .zip(m.prev.iter().chain(std::iter::repeat(&0)))
            .map(|(n, p)| n.saturating_sub(*p))
            .collect();
        let total: u64 = delta.iter().sum();
        let max = self.minute_max_us.swap(0, Relaxed);
        let min = self.minute_min_us.swap(u64::MAX, Relaxed).min(max);
        // A sample recorded while rolling may land in either minute; the
        // bounds only keep quantiles within what was seen.
        let floor_ms =
            |i: Option<usize>| i.map_or(0.0, |i| bucket_floor(i).max(min).min(max) as f64 / 1000.0);
        let (min_ms, max_ms) = if total == 0 {
            (0.0, 0.0)
        } else {
            (min as f64 / 1000.0, max as f64 / 1000.0)
        };
        let qs = quantiles
            .iter()
            .map(|&q| {
                if total == 0 {
                    return 0.0;
                }
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                let at = delta.iter().position(|c| {
                    seen += c;
                    seen >= rank
                });
                if q >= 1.0 { max_ms } else { floor_ms(at) }
            })
            .collect();
        m.last = Some(HistogramSnapshot {
            count: total,
            sum_ms: sum_us.saturating_sub(m.prev_sum_us) as f64 / 1000.0,
            min_ms,
            max_ms,
            quantiles: qs,
        });
        m.prev = now;
        m.prev_sum_us = sum_us;
    }

    /// The minute closed by the last [`Histogram::roll_minute`] (`None`
    /// before the first).
    pub fn last_minute(&self) -> Option<HistogramSnapshot> {
        self.minute
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last
            .clone()
    }
}

/// Linkerd 1's one-minute view of a histogram: the counts at the last
/// roll, and the minute it closed. Touched once a minute and when
/// rendered, never by requests.
#[derive(Debug, Default)]
struct Minute {
    prev: Vec<u64>,
    prev_sum_us: u64,
    last: Option<HistogramSnapshot>,
}

/// A histogram's values at one instant.
#[derive(Clone, Debug)]
pub struct HistogramSnapshot {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples, in ms.
    pub sum_ms: f64,
    /// Smallest sample, in ms.
    pub min_ms: f64,
    /// Largest sample, in ms.
    pub max_ms: f64,
    /// The requested quantiles, in ms.
    pub quantiles: Vec<f64>,
}

/// A value read when metrics are rendered (state owned elsewhere, e.g. a
/// balancer's atomics).
pub type ReadFn = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
    /// Read at render time; `true` when it is a counter.
    Read(ReadFn, bool),
}

impl std::fmt::Debug for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Metric::Counter(c) => c.fmt(f),
            Metric::Gauge(g) => g.fmt(f),
            Metric::Histogram(_) => f.write_str("Histogram"),
            Metric::Read(r, _) => write!(f, "Read({})", r()),
        }
    }
}

/// All metrics of the process, by scope and name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    metrics: Arc<RwLock<BTreeMap<(Scope, String), Metric>>>,
}

/// The quantiles of Linkerd's Prometheus summaries: `0` is the min, `1`
/// the max.
pub const LINKERD_QUANTILES: [f64; 8] = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0];

const JSON_QUANTILES: [(&str, f64); 6] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p9990", 0.999),
    ("p9999", 0.9999),
];

/// A metric's value, as an exporter reads it.
#[derive(Debug)]
pub enum Reading<'a> {
    /// A counter's count.
    Counter(u64),
    /// A gauge's value.
    Gauge(i64),
    /// A latency histogram.
    Histogram(&'a Histogram),
}

impl Registry {
    /// Calls `f` with every metric, in scope and name order. The registry
    /// is read-locked meanwhile: `f` must not register metrics.
    pub fn visit(&self, mut f: impl FnMut(&Scope, &str, Reading<'_>)) {
        let metrics = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        for ((scope, name), m) in metrics.iter() {
            let reading = match m {
                Metric::Counter(c) => Reading::Counter(c.get()),
                Metric::Gauge(g) => Reading::Gauge(g.get()),
                Metric::Read(r, true) => Reading::Counter(u64::try_from(r()).unwrap_or(0)),
                Metric::Read(r, false) => Reading::Gauge(r()),
                Metric::Histogram(h) => Reading::Histogram(h),
            };
            f(scope, name, reading);
        }
    }

    /// The counter `name` in `scope`, created on first use.
    pub fn counter(&self, scope: &Scope, name: &str) -> Arc<Counter> {
        match self.get_or_insert(scope, name, || Metric::Counter(Arc::default())) {
            Metric::Counter(c) => c,
            // Same name registered as another type: hand out a detached one.
            _ => Arc::default(),
        }
    }

    /// The gauge `name` in `scope`, created on first use.
    pub fn gauge(&self, scope: &Scope, name: &str) -> Arc<Gauge> {
        match self.get_or_insert(scope, name, || Metric::Gauge(Arc::default())) {
            Metric::Gauge(g) => g,
            _ => Arc::default(),
        }
    }

    /// The histogram `name` in `scope`, created on first use.
    pub fn histogram(&self, scope: &Scope, name: &str) -> Arc<Histogram> {
        match self.get_or_insert(scope, name, || Metric::Histogram(Arc::default())) {
            Metric::Histogram(h) => h,
            _ => Arc::default(),
        }
    }

    /// Registers `read` as the counter (`counter == true`) or gauge `name`
    /// in `scope`, replacing any previous one.
    pub fn read_fn(&self, scope: &Scope, name: &str, counter: bool, read: ReadFn) {
        self.metrics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (scope.clone(), name.to_owned()),
                Metric::Read(read, counter),
            );
    }

    fn get_or_insert(&self, scope: &Scope, name: &str, new: impl FnOnce() -> Metric) -> Metric {
        let key = (scope.clone(), name.to_owned());
        if let Some(m) = self
            .metrics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return m.clone();
        }
        let mut w = self.metrics.write().unwrap_or_else(|e| e.into_inner());
        w.entry(key).or_insert_with(new).clone()
    }

    /// Drops the metric `name` of `scope`, if there is one.
    pub fn remove(&self, scope: &Scope, name: &str) {
        self.metrics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(scope.clone(), name.to_owned()));
    }

    /// Drops every metric of `scope` (an expired service or client).
    pub fn remove_scope(&self, scope: &Scope) {
        let mut metrics = self.metrics.write().unwrap_or_else(|e| e.into_inner());
        // Keys sort by scope first: the scope's metrics are one range.
        let names: Vec<String> = metrics
            .range((scope.clone(), String::new())..)
            .take_while(|((s, _), _)| s == scope)
            .map(|((_, n), _)| n.clone())
            .collect();
        for name in names {
            metrics.remove(&(scope.clone(), name));
        }
    }

    /// Closes the minute of every histogram (Linkerd 1's snapshot, taken
    /// every minute): `/admin/metrics/prometheus` shows that minute.
    pub fn roll_minute(&self) {
        let hists: Vec<Arc<Histogram>> = self
            .metrics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|m| match m {
                Metric::Histogram(h) => Some(Arc::clone(h)),
                _ => None,
            })
            .collect();
        for h in hists {
            h.roll_minute(&LINKERD_QUANTILES);
        }
    }

    /// The flat JSON of `/admin/metrics.json`: counters and gauges as
    /// numbers, histograms as `<name>.count`, `.sum`, `.avg`, `.min`,
    /// `.max`, `.p50` ... `.p9999` (ms).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        let metrics = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        let qs: Vec<f64> = JSON_QUANTILES.iter().map(|q| q.1).collect();
        for ((scope, name), m) in metrics.iter() {
            let flat = scope.flat(name);
            match m {
                Metric::Counter(c) => {
                    out.insert(flat, c.get().into());
                }
                Metric::Gauge(g) => {
                    out.insert(flat, g.get().into());
                }
                Metric::Read(r, _) => {
                    out.insert(flat, r().into());
                }
                Metric::Histogram(h) => {
                    let s = h.snapshot(&qs);
                    let avg = if s.count == 0 {
                        0.0
                    } else {
                        s.sum_ms / s.count as f64
                    };
                    out.insert(format!("{flat}.count"), s.count.into());
                    out.insert(format!("{flat}.sum"), json_f64(s.sum_ms));
                    out.insert(format!("{flat}.avg"), json_f64(avg));
                    out.insert(format!("{flat}.min"), json_f64(s.min_ms));
                    out.insert(format!("{flat}.max"), json_f64(s.max_ms));
                    for ((label, _), v) in JSON_QUANTILES.iter().zip(&s.quantiles) {
                        out.insert(format!("{flat}.{label}"), json_f64(*v));
                    }
                }
            }
        }
        out
    }

    /// Prometheus text exposition (format 0.0.4) with Linkerd 1's names:
    /// segments joined with `:`, the router, service, client and server
    /// lifted into labels (values without the leading `/`), histograms as
    /// summaries in milliseconds of the last closed minute
    /// ([`Registry::roll_minute`]) with `_avg` beside them
    /// (`rt:service:request_latency_ms{rt="http", service="svc/a",
    /// quantile="0.5"}`). These are the names Linkerd 1 dashboards query;
    /// `promtool` parses them but its linter objects to `:` and to counters
    /// without `_total`, so [`PromStyle::Conventional`] exists too.
    pub fn to_prometheus(&self, prefix: &str) -> String {
        self.render_prometheus(prefix, PromStyle::Linkerd)
    }

    /// Prometheus text exposition in the given naming style.
    pub fn render_prometheus(&self, prefix: &str, style: PromStyle) -> String {
        let metrics = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        // Group series by metric name so each family is contiguous and has
        // one HELP and TYPE line.
        let mut families: BTreeMap<String, (&'static str, String, Vec<String>)> = BTreeMap::new();
        let quantiles = LINKERD_QUANTILES;
        for ((scope, name), m) in metrics.iter() {
            let (name, lifted) = match style {
                PromStyle::Linkerd => (name.as_str(), None),
                PromStyle::Conventional => lift_status(name),
            };
            let lifted = lifted.unwrap_or_default();
            let (pname, labels) = scope.prometheus(name, prefix);
            let with = |extra: &str| -> String {
                match (labels.is_empty(), extra.is_empty()) {
                    (true, true) => String::new(),
                    (true, false) => format!("{{{extra}}}"),
                    (false, true) => format!("{{{labels}}}"),
                    (false, false) => format!("{{{labels}, {extra}}}"),
                }
            };
            let help = format!("Linkerd 1 metric {}", scope.generic(name));
            match m {
                Metric::Counter(_) | Metric::Gauge(_) | Metric::Read(..) => {
                    let (value, counter) = match m {
                        Metric::Counter(c) => (c.get() as f64, true),
                        Metric::Gauge(g) => (g.get() as f64, false),
                        Metric::Read(r, counter) => (r() as f64, *counter),
                        Metric::Histogram(_) => (0.0, false),
                    };
                    let (pname, scale) = style.unit(&pname);
                    let (pname, ty) = if counter {
                        (style.counter(&pname), "counter")
                    } else {
                        (pname, "gauge")
                    };
                    let fam = families
                        .entry(pname.clone())
                        .or_insert((ty, help, Vec::new()));
                    fam.2
                        .push(format!("{pname}{} {}", with(&lifted), value * scale));
                }
                Metric::Histogram(h)
                    if style == PromStyle::Conventional && name.ends_with("_ms") =>
                {
                    // A latency: a Prometheus histogram in seconds.
                    let (pname, _) = style.latency(&pname);
                    let (buckets, sum_s) = h.prom_buckets();
                    let fam =
                        families
                            .entry(pname.clone())
                            .or_insert(("histogram", help, Vec::new()));
                    for (le, n) in PROM_LE.iter().zip(buckets) {
                        fam.2.push(format!(
                            "{pname}_bucket{} {n}",
                            with(&format!("le=\"{le}\""))
                        ));
                    }
                    let count = buckets.last().copied().unwrap_or(0);
                    fam.2.push(format!("{pname}_sum{} {sum_s}", with("")));
                    fam.2.push(format!("{pname}_count{} {count}", with("")));
                }
                Metric::Histogram(h) if style == PromStyle::Linkerd => {
                    // Linkerd 1: the last closed minute, nothing before the
                    // first one or for a minute without samples; `_avg` is
                    // a family of its own so that every family has a TYPE.
                    let Some(s) = h.last_minute().filter(|s| s.count > 0) else {
                        continue;
                    };
                    let fam = families.entry(pname.clone()).or_insert((
                        "summary",
                        help.clone(),
                        Vec::new(),
                    ));
                    for (q, v) in quantiles.iter().zip(&s.quantiles) {
                        fam.2
                            .push(format!("{pname}{} {v}", with(&format!("quantile=\"{q}\""))));
                    }
                    fam.2.push(format!("{pname}_sum{} {}", with(""), s.sum_ms));
                    fam.2.push(format!("{pname}_count{} {}", with(""), s.count));
                    let avg = format!("{pname}_avg");
                    let fam = families
                        .entry(avg.clone())
                        .or_insert(("gauge", help, Vec::new()));
                    let v = s.sum_ms / s.count as f64;
                    fam.2.push(format!("{avg}{} {v}", with("")));
                }
                Metric::Histogram(h) => {
                    let s = h.snapshot(&quantiles);
                    let (pname, scale) = style.latency(&pname);
                    let fam =
                        families
                            .entry(pname.clone())
                            .or_insert(("summary", help, Vec::new()));
                    for (q, v) in quantiles.iter().zip(&s.quantiles) {
                        fam.2.push(format!(
                            "{pname}{} {}",
                            with(&format!("quantile=\"{q}\"")),
                            v * scale
                        ));
                    }
                    fam.2
                        .push(format!("{pname}_sum{} {}", with(""), s.sum_ms * scale));
                    fam.2.push(format!("{pname}_count{} {}", with(""), s.count));
                }
            }
        }
        let mut out = String::new();
        for (name, (ty, help, lines)) in families {
            if style == PromStyle::Conventional {
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let _ = writeln!(out, "# TYPE {name} {ty}");
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// On `/metrics`, a status counter's code or class as a label:
/// `status/200` → `responses{status_code="200"}`, `status/2XX` →
/// `responses_by_class{status_class="2XX"}` (two families, so summing
/// one never counts a response twice). Other names are left alone.
fn lift_status(name: &str) -> (&str, Option<String>) {
    let Some(v) = name.strip_prefix("status/") else {
        return (name, None);
    };
    let b = v.as_bytes();
    match b {
        [d, x, y] if d.is_ascii_digit() && *x == b'X' && *y == b'X' => {
            ("responses_by_class", Some(format!("status_class=\"{v}\"")))
        }
        [_, _, _] if b.iter().all(u8::is_ascii_digit) => {
            ("responses", Some(format!("status_code=\"{v}\"")))
        }
        _ => (name, None),
    }
}

/// How Prometheus metric names are spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromStyle {
    /// Linkerd 1's names (`rt:service:requests`, latency in ms): what its
    /// dashboards query.
    Linkerd,
    /// The same series under Prometheus' naming rules, clean for `promtool
    /// check metrics`: `_` instead of `:`, lower case, counters ending in
    /// `_total`, latency in seconds (`rt_service_request_latency_seconds`),
    /// with HELP lines.
    Conventional,
}

impl PromStyle {
    fn plain(self, name: &str) -> String {
        match self {
            PromStyle::Linkerd => name.to_owned(),
            PromStyle::Conventional => name.replace(':', "_").to_ascii_lowercase(),
        }
    }

    fn counter(self, name: &str) -> String {
        match self {
            PromStyle::Linkerd => name.to_owned(),
            // `retries/total` reads `..._retries_total`, not `_total_total`.
            PromStyle::Conventional if name.ends_with("_total") => name.to_owned(),
            PromStyle::Conventional => format!("{name}_total"),
        }
    }

    /// The name in this style and the factor to its unit: conventional
    /// names carry seconds where Linkerd's carry `_ms`.
    fn unit(self, name: &str) -> (String, f64) {
        match self {
            PromStyle::Linkerd => (name.to_owned(), 1.0),
            PromStyle::Conventional => match self.plain(name).strip_suffix("_ms") {
                Some(base) => (format!("{base}_seconds"), 0.001),
                None => (self.plain(name), 1.0),
            },
        }
    }

    /// The histogram's name and the factor from milliseconds to its unit.
    fn latency(self, name: &str) -> (String, f64) {
        match self {
            PromStyle::Linkerd => (name.to_owned(), 1.0),
            PromStyle::Conventional => match self.plain(name).strip_suffix("_ms") {
                Some(base) => (format!("{base}_seconds"), 0.001),
                None => (self.plain(name), 1.0),
            },
        }
    }
}

fn json_f64(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
