//! Sampled requests, for the telemeters that look at single requests:
//! `io.l5d.recentRequests` (the last `capacity` sampled requests, shown by
//! the admin's `/requests`) and `io.l5d.tracelog` (a log line per sampled
//! request, on the logger `io.l5d.tracelog`).
//!
//! Sampling decides first, from the request's trace (a decision that came
//! in wins, as Finagle's tracers honour it) or one `fastrand` draw; only a
//! sampled request allocates its [`Sample`] and, when it ends, takes the
//! ring's lock. An unsampled request costs one draw and a comparison.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Request;
use serde_json::{Value, json};
use strait_dtab::Path;

use crate::trace::Trace;

/// The request telemeters of a configuration, shared by its routers.
#[derive(Debug, Default)]
pub struct RequestTelemeters {
    recent: Option<RecentRequests>,
    tracelog: Option<TraceLog>,
}

/// `io.l5d.recentRequests`: a ring of the last sampled requests.
#[derive(Debug)]
pub struct RecentRequests {
    sample_rate: f64,
    capacity: usize,
    ring: Mutex<VecDeque<Arc<RecentRequest>>>,
}

/// `io.l5d.tracelog`: sampled requests logged at a level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceLog {
    /// `sampleRate`, clamped to \[0, 1\].
    pub sample_rate: f64,
    /// `level`.
    pub level: LogLevel,
}

/// Linkerd's log levels, as `tracing` has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `OFF`: nothing is logged.
    Off,
    /// `FATAL`, `CRITICAL`, `ERROR`.
    Error,
    /// `WARNING`.
    Warn,
    /// `INFO`.
    Info,
    /// `DEBUG`.
    Debug,
    /// `TRACE`, `ALL`.
    Trace,
}

/// One sampled request, as `/requests` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecentRequest {
    /// When it came in, ms since the epoch.
    pub timestamp_ms: u64,
    /// Its trace id (hex).
    pub trace_id: String,
    /// The client's address (Linkerd's "Source").
    pub source: SocketAddr,
    /// The server it came in on (`ip/port`).
    pub server: String,
    /// The router's label.
    pub router: String,
    /// The request method.
    pub method: String,
    /// Its `Host` (or `:authority`), if any.
    pub host: Option<String>,
    /// Its URI as it came in.
    pub uri: String,
    /// The logical name, once identified.
    pub logical: Option<String>,
    /// The concrete name (client id), once bound.
    pub concrete: Option<String>,
    /// The endpoint of the last attempt (Linkerd's "Destination").
    pub endpoint: Option<SocketAddr>,
    /// The response status.
    pub status: u16,
    /// From arrival to the response head.
    pub duration: Duration,
}

/// A sampled request under way.
#[derive(Debug)]
pub struct Sample {
    /// The draw: each telemeter takes the request when it is under its
    /// rate (-1, under all, when the trace said "sampled").
    coin: f64,
    start: Instant,
    entry: Mutex<RecentRequest>,
}

impl RequestTelemeters {
    /// The telemeters; `None` when there are none.
    pub fn new(recent: Option<(f64, usize)>, tracelog: Option<TraceLog>) -> Option<Self> {
        if recent.is_none() && tracelog.is_none() {
            return None;
        }
        Some(RequestTelemeters {
            recent: recent.map(|(sample_rate, capacity)| RecentRequests {
                sample_rate,
                capacity: capacity.max(1),
                ring: Mutex::new(VecDeque::with_capacity(capacity.clamp(1, 1024))),
            }),
            tracelog,
        })
    }

    /// `io.l5d.recentRequests`, if configured.
    pub fn recent(&self) -> Option<&RecentRequests> {
        self.recent.as_ref()
    }

    /// `io.l5d.tracelog`, if configured.
    pub fn tracelog(&self) -> Option<TraceLog> {
        self.tracelog
    }

    /// The largest rate of the telemeters.
    fn max_rate(&self) -> f64 {
        let r = self.recent.as_ref().map_or(0.0, |r| r.sample_rate);
        let t = self.tracelog.as_ref().map_or(0.0, |t| t.sample_rate);
        r.max(t)
    }

    /// Whether to sample this request: `Some` (with what is known of it
    /// now) when some telemeter takes it.
    pub fn sample<B: crate::body::Opaque>(
        &self,
        req: &Request<B>,
        trace: &Trace,
        source: SocketAddr,
        server: &str,
        router: &str,
    ) -> Option<Arc<Sample>> {
        let coin = match trace.sampled {
            // Below every rate, 0 included.
            _ if trace.debug => -1.0,
            Some(true) => -1.0,
            Some(false) => return None,
            None => fastrand::f64(),
        };
        if coin >= self.max_rate() {
            return None;
        }
        // Sampled: from here on the request pays for its entry.
        let host = crate::identify::header(req, &http::header::HOST)
            .and_then(|h| std::str::from_utf8(h).ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Some(Arc::new(Sample {
            coin,
            start: Instant::now(),
            entry: Mutex::new(RecentRequest {
                timestamp_ms,
                trace_id: trace.id.hex().as_str().to_owned(),
                source,
                server: server.to_owned(),
                router: router.to_owned(),
                method: req.method().as_str().to_owned(),
                host,
                uri: req.uri().to_string(),
                logical: None,
                concrete: None,
                endpoint: None,
                status: 0,
                duration: Duration::ZERO,
            }),
        }))
    }

    /// Ends a sampled request with its response status: into the ring,
    /// into the log, as each telemeter's rate says.
    pub fn finish(&self, sample: &Sample, status: u16) {
        let entry = {
            let mut e = sample.entry.lock().unwrap_or_else(|e| e.into_inner());
            e.status = status;
            e.duration = sample.start.elapsed();
            e.clone()
        };
        if let Some(t) = &self.tracelog
            && sample.coin < t.sample_rate
        {
            t.log(&entry);
        }
        if let Some(r) = &self.recent
            && sample.coin < r.sample_rate
        {
            r.push(entry);
        }
    }
}

impl Sample {
    /// The request's logical name.
    pub fn set_logical(&self, name: &Path) {
        self.entry.lock().unwrap_or_else(|e| e.into_inner()).logical = Some(name.show());
    }

    /// The client it was bound to.
    pub fn set_concrete(&self, id: &Path) {
        self.entry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .concrete = Some(id.show());
    }

    /// The endpoint an attempt went to (the last one wins).
    pub fn set_endpoint(&self, addr: SocketAddr) {
        self.entry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .endpoint = Some(addr);
    }
}

impl RecentRequests {
    /// `sampleRate`.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// `capacity`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn push(&self, entry: RecentRequest) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        while ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(Arc::new(entry));
    }

    /// The kept requests, newest first.
    pub fn entries(&self) -> Vec<Arc<RecentRequest>> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().cloned().collect()
    }

    /// `/requests.json`: `{"sampleRate", "capacity", "requests": [...]}`,
    /// newest first.
    pub fn to_json(&self) -> Value {
        let requests: Vec<Value> = self.entries().iter().map(|e| e.to_json()).collect();
        json!({
            "sampleRate": self.sample_rate,
            "capacity": self.capacity,
            "requests": requests,
        })
    }
}

impl RecentRequest {
    /// One entry of `/requests.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "timestamp": self.timestamp_ms,
            "traceId": self.trace_id,
            "source": self.source.to_string(),
            "server": self.server,
            "router": self.router,
            "method": self.method,
            "host": self.host,
            "uri": self.uri,
            "logicalName": self.logical,
            "concreteName": self.concrete,
            "endpoint": self.endpoint.map(|e| e.to_string()),
            "status": self.status,
            "durationMs": self.duration.as_secs_f64() * 1000.0,
        })
    }
}

impl TraceLog {
    fn log(&self, e: &RecentRequest) {
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "io.l5d.tracelog",
                    $level,
                    trace_id = %e.trace_id,
                    router = %e.router,
                    server = %e.server,
                    source = %e.source,
                    method = %e.method,
                    host = e.host.as_deref().unwrap_or("-"),
                    uri = %e.uri,
                    logical = e.logical.as_deref().unwrap_or("-"),
                    concrete = e.concrete.as_deref().unwrap_or("-"),
                    endpoint = %e.endpoint.map_or_else(|| "-".to_owned(), |a| a.to_string()),
                    status = e.status,
                    duration_ms = e.duration.as_secs_f64() * 1000.0,
                    "sampled request"
                )
            };
        }
        match self.level {
            LogLevel::Off => {}
            LogLevel::Error => line!(tracing::Level::ERROR),
            LogLevel::Warn => line!(tracing::Level::WARN),
            LogLevel::Info => line!(tracing::Level::INFO),
            LogLevel::Debug => line!(tracing::Level::DEBUG),
            LogLevel::Trace => line!(tracing::Level::TRACE),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req() -> Request<()> {
        Request::get("/a?b=1")
            .header("host", "web")
            .body(())
            .unwrap()
    }

    fn trace(sampled: Option<bool>) -> Trace {
        let mut h = http::HeaderMap::new();
        if let Some(s) = sampled {
            h.insert(
                "l5d-sample",
                http::HeaderValue::from_static(if s { "1" } else { "0" }),
            );
        }
        Trace::take(&mut h)
    }

    fn source() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5555))
    }

    #[test]
    fn keeps_the_last_capacity_newest_first() {
        let t = RequestTelemeters::new(Some((1.0, 3)), None).unwrap();
        for i in 0..5u16 {
            let s = t
                .sample(&req(), &trace(None), source(), "0.0.0.0/4140", "http")
                .unwrap_or_else(|| panic!("rate 1 samples every request"));
            s.set_logical(&Path::read("/svc/web").unwrap());
            s.set_concrete(&Path::read("/#/io.l5d.fs/web").unwrap());
            s.set_endpoint(SocketAddr::from(([127, 0, 0, 1], 8000 + i)));
            t.finish(&s, 200 + i);
        }
        let recent = t.recent().map(RecentRequests::entries).unwrap_or_default();
        let statuses: Vec<u16> = recent.iter().map(|e| e.status).collect();
        assert_eq!(statuses, vec![204, 203, 202]);
        let e = &recent[0];
        assert_eq!(e.method, "GET");
        assert_eq!(e.host.as_deref(), Some("web"));
        assert_eq!(e.uri, "/a?b=1");
        assert_eq!(e.logical.as_deref(), Some("/svc/web"));
        assert_eq!(e.concrete.as_deref(), Some("/#/io.l5d.fs/web"));
        assert_eq!(e.endpoint, Some(SocketAddr::from(([127, 0, 0, 1], 8004))));
        assert_eq!(e.router, "http");
        assert_eq!(e.server, "0.0.0.0/4140");
    }

    #[test]
    fn rate_zero_samples_nothing_unless_the_trace_says_so() {
        let t = RequestTelemeters::new(Some((0.0, 3)), None).unwrap();
        assert!(t.sample(&req(), &trace(None), source(), "s", "r").is_none());
        assert!(
            t.sample(&req(), &trace(Some(true)), source(), "s", "r")
                .is_some(),
            "l5d-sample: 1 samples"
        );
        let t = RequestTelemeters::new(Some((1.0, 3)), None).unwrap();
        assert!(
            t.sample(&req(), &trace(Some(false)), source(), "s", "r")
                .is_none(),
            "l5d-sample: 0 does not"
        );
    }

    #[test]
    fn each_telemeter_keeps_its_own_rate() {
        let log = TraceLog {
            sample_rate: 1.0,
            level: LogLevel::Off,
        };
        let t = RequestTelemeters::new(Some((0.0, 3)), Some(log)).unwrap();
        for _ in 0..10 {
            if let Some(s) = t.sample(&req(), &trace(None), source(), "s", "r") {
                t.finish(&s, 200);
            }
        }
        assert!(
            t.recent()
                .map(RecentRequests::entries)
                .unwrap_or_default()
                .is_empty(),
            "sampled for the tracelog, not for recentRequests at rate 0"
        );
        assert!(RequestTelemeters::new(None, None).is_none());
    }
}
