//! `io.l5d.consul`: service discovery from Consul, as Linkerd 1 did it, with
//! the lessons of its issue tracker built in.
//!
//! This crate owns three things:
//!
//! * [`client`]: a small typed client for the two Consul reads a namer needs,
//!   `GET /v1/health/service/<svc>` (or `/v1/catalog/service/<svc>`) as a
//!   blocking query, and `GET /v1/agent/self`, on the project's own hyper 1
//!   client. The rules of Consul's blocking queries (index never 0, reset
//!   when it goes backwards, compare results rather than indexes, a request
//!   timeout longer than `wait + wait/16`) live there.
//! * [`ConsulNamer`]: the namer serving `/#/io.l5d.consul/<dc>/<service>`
//!   (with `includeTag`, `/#/io.l5d.consul/<dc>/<tag>/<service>`), one
//!   long-poll loop per watched `(dc, tag, service)`, shared by every lookup
//!   of that name.
//! * [`ConsulDtabInterpreter`]: `io.l5d.consul.interpreter`, the stored dtab
//!   from a Consul KV key, watched with a blocking query (see `kv.rs`).
//!
//! It does not own the YAML (`strait::config` turns `linkerd.yaml` into a
//! plain [`ConsulConfig`]), `setHost` (the router rewrites `Host`), or load
//! balancing (it hands out [`strait_naming::AddrVar`]s).
//!
//! # What a lookup answers
//!
//! | Consul says | address set ([`Addr`]) | lookup ([`Activity`]) |
//! | --- | --- | --- |
//! | nothing yet (first request in flight) | `Pending` | `Pending` |
//! | still nothing after [`ConsulConfig::pending_timeout`] | `Neg` | `Ok(Neg)` |
//! | 200 with instances | `Bound(endpoints)` | `Ok(Leaf(Bound))` |
//! | 200 with no (usable) instance | `Neg` | `Ok(Neg)`: a dtab `\|` alternative engages |
//! | an error, name never answered | `Neg` | `Ok(Neg)` |
//! | an error, name answered before | unchanged (last good answer) | unchanged |
//! | too many watched names | — | `Failed("consul namer: too many watched names …")` |
//!
//! Errors are never terminal: the loop backs off (jittered, exponential,
//! [`ConsulConfig::backoff`]) and retries without an index for as long as
//! someone observes the name. So a Consul that is down at start only makes
//! names `Neg` for a while, a missing `X-Consul-Index` does not end the
//! watch (Linkerd 1 stopped there), and an unknown datacenter (500 "No path
//! to datacenter") is `Neg`, never an endless `Pending`
//! (linkerd/linkerd#1836, #2145, #2200).
//!
//! # Pacing
//!
//! After an answer the next request goes at once (a blocking query on the
//! answer's index), except when answers churn: a token bucket (burst 10,
//! one token per 100 ms; Consul's blocking-query docs recommend a bucket
//! over a flat sleep) holds a loop whose answers keep coming back
//! immediately to ten requests a second. Answers are compared, not indexes: an unchanged address set
//! wakes nobody. Errors use the backoff instead, and every retry after an
//! error is a fresh read without an index.
//!
//! `.local` is resolved once from `GET /v1/agent/self`; until then `.local`
//! names are `Pending` (then `Neg` after the pending timeout, or at once if
//! the request fails). A `.local` name and the same name under the agent's
//! datacenter are separate watches (their bound ids differ too).
//!
//! # Bounds
//!
//! `Host` headers are attacker-controlled, and Linkerd 1 kept a long poll
//! open for every name ever asked for while it was observed
//! (linkerd/linkerd#1766). Here at most [`ConsulConfig::max_watches`] loops
//! run; an unobserved watch is stopped after
//! [`ConsulConfig::watch_idle_ttl`] (its in-flight long poll is dropped), and
//! when the bound is reached the least recently observed unobserved watch
//! makes room. If every watch is observed, a new name is refused with a
//! `Failed` lookup naming the limit; it is admitted as soon as room frees up.
//!
//! Each watch holds one HTTP/1 connection while it long-polls. A Consul
//! agent accepts at most `limits.http_max_conns_per_client` concurrent
//! connections per client address (200 by default since Consul 1.6.3,
//! hashicorp/consul#7289): keep `maxWatches` below that or raise the limit.
//!
//! # `failFast` and `transferMetadata`
//!
//! Linkerd 1's `failFast` switched Finagle's fail-fast on the Consul client.
//! Here, with `fail_fast: true`, a *connection* failure closes a shared gate
//! for a jittered backoff: no watch sends a request until it reopens, so a
//! Consul that is down gets one probe instead of one per watch. With
//! `false` (the default, right for a local agent) every watch retries on its
//! own schedule.
//!
//! With `transfer_metadata: true` each watch keeps the `ServiceMeta` of the
//! first instance and every node's `NodeMeta` and shows them in
//! [`strait_naming::Namer::state`]. Strait uses them only in the admin views
//! (Linkerd 1 copied them into address metadata for Namerd's APIs).
//!
//! [`Addr`]: strait_naming::Addr
//! [`Activity`]: strait_naming::Activity

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::time::Duration;

pub mod client;
mod kv;
mod namer;
mod pace;
mod tls;

pub use kv::{ConsulDtabInterpreter, KvConfig, valid_namespace};
pub use namer::{ConsulNamer, ConsulStats};
pub use tls::ConsulTls;

/// The datacenter element meaning "the agent's own datacenter".
pub const LOCAL_DC: &str = ".local";

/// A Consul health status, ordered from best to worst.
///
/// Consul reports `passing`, `warning` and `critical`; maintenance mode is a
/// critical check named `_node_maintenance` or `_service_maintenance:<id>`,
/// which Linkerd 1 (and this crate) call `maintenance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthStatus {
    /// All is well.
    Passing,
    /// Degraded.
    Warning,
    /// Failing.
    Critical,
    /// In maintenance mode.
    Maintenance,
}

impl HealthStatus {
    /// Parses a status name, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<HealthStatus> {
        [
            HealthStatus::Passing,
            HealthStatus::Warning,
            HealthStatus::Critical,
            HealthStatus::Maintenance,
        ]
        .into_iter()
        .find(|h| h.as_str().eq_ignore_ascii_case(s))
    }

    /// The status name, as in `linkerd.yaml` and Consul's API.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Passing => "passing",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
            HealthStatus::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Consul's read consistency mode (`consistencyMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// Served by the leader, possibly slightly stale after a leader change.
    #[default]
    Default,
    /// `?stale`: any server answers, even without a leader.
    Stale,
    /// `?consistent`: the leader checks it still leads first.
    Consistent,
}

/// How the `io.l5d.consul` namer talks to Consul: Linkerd 1's parameters
/// plus Strait's bounds. [`Default`] gives Linkerd 1's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsulConfig {
    /// The agent's host (`host`, default `localhost`).
    pub host: String,
    /// The agent's HTTP port (`port`, default 8500).
    pub port: u16,
    /// Paths carry a tag: `<dc>/<tag>/<service>` (`includeTag`, default
    /// false).
    pub include_tag: bool,
    /// Read `/v1/health/service` instead of `/v1/catalog/service`
    /// (`useHealthCheck`, default false).
    pub use_health_check: bool,
    /// Which instances to keep when `use_health_check` is on, judged by the
    /// worst of each instance's node and service checks (`healthStatuses`,
    /// default `[passing]`, which Consul filters server-side).
    pub health_statuses: Vec<HealthStatus>,
    /// Sent as `X-Consul-Token`, never in the URL (`token`).
    pub token: Option<String>,
    /// Read consistency (`consistencyMode`, default [`Consistency::Default`]).
    pub consistency: Consistency,
    /// After a connection failure, hold every watch's requests for a
    /// backoff instead of letting each retry on its own (`failFast`,
    /// default false). See the crate documentation.
    pub fail_fast: bool,
    /// Dial the service's registered address when it has one, else its
    /// node's (`preferServiceAddress`, default true); false always dials
    /// the node's address.
    pub prefer_service_address: bool,
    /// Tag weights (`weights`): an instance gets the highest weight among
    /// its tags (exact match), else 1.0.
    pub weights: Vec<(String, f64)>,
    /// Keep `ServiceMeta` and `NodeMeta` for the admin views
    /// (`transferMetadata`, default false).
    pub transfer_metadata: bool,
    /// Requests to a Consul name carry `Host:
    /// [<tag>.]<service>.service.<dc>.<domain>` (`setHost`, default
    /// false); the domain is the agent's (`/v1/agent/self`), `consul`
    /// until it has answered.
    pub set_host: bool,
    /// At most this many names are watched at once (Strait, default 1000).
    pub max_watches: usize,
    /// A watch nobody observes is stopped after this long (Strait, default
    /// 60 s).
    pub watch_idle_ttl: Duration,
    /// How long Consul may hold a blocking query (sent as `wait=<ms>ms`,
    /// default 5 minutes, Consul's own default; Consul caps it at 10).
    pub wait: Duration,
    /// A name with no answer after this long is `Neg` until Consul answers
    /// (default 1 s), so dtab alternatives engage instead of requests
    /// waiting out the router's binding timeout.
    pub pending_timeout: Duration,
    /// Retry delays after errors: jittered exponential from the first to
    /// the second (default 10 ms to 5 s, Linkerd 1's), reset on success.
    pub backoff: (Duration, Duration),
    /// HTTPS to the agent (`tls`, default plain HTTP).
    pub tls: Option<ConsulTls>,
}

impl Default for ConsulConfig {
    fn default() -> Self {
        ConsulConfig {
            host: "localhost".into(),
            port: 8500,
            include_tag: false,
            use_health_check: false,
            health_statuses: vec![HealthStatus::Passing],
            token: None,
            consistency: Consistency::Default,
            fail_fast: false,
            prefer_service_address: true,
            weights: Vec::new(),
            transfer_metadata: false,
            set_host: false,
            max_watches: 1000,
            watch_idle_ttl: Duration::from_secs(60),
            wait: Duration::from_secs(300),
            pending_timeout: Duration::from_secs(1),
            backoff: (Duration::from_millis(10), Duration::from_secs(5)),
            tls: None,
        }
    }
}

impl ConsulConfig {
    /// Every problem with the configuration, or nothing.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if self.host.trim().is_empty() {
            errors.push("host must not be empty".to_owned());
        } else if client::authority(&self.host, self.port).is_err() {
            errors.push(format!(
                "host {:?} port {} is not a valid address",
                self.host, self.port
            ));
        }
        if self.port == 0 {
            errors.push("port must be 1..65535".to_owned());
        }
        if self.use_health_check && self.health_statuses.is_empty() {
            errors.push("healthStatuses must not be empty".to_owned());
        }
        if let Some(t) = &self.token
            && http::HeaderValue::from_str(t).is_err()
        {
            errors.push("token must be printable ASCII (it is sent as a header)".to_owned());
        }
        for (tag, w) in &self.weights {
            if !w.is_finite() || *w < 0.0 {
                errors.push(format!(
                    "weight {w} for tag {tag:?} must be a finite number >= 0"
                ));
            }
        }
        if self.max_watches == 0 {
            errors.push("maxWatches must be at least 1".to_owned());
        }
        if self.wait.is_zero() {
            errors.push("wait must be positive (Consul reads 0 as 5 minutes)".to_owned());
        }
        let (lo, hi) = self.backoff;
        if lo.is_zero() || lo > hi {
            errors.push(format!(
                "backoff must satisfy 0 < min <= max, got {lo:?} .. {hi:?}"
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("io.l5d.consul: {}", errors.join("; ")))
        }
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        client::authority(&self.host, self.port).unwrap_or_else(|_| self.host.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_linkerd_1_defaults() {
        let c = ConsulConfig::default();
        assert_eq!((c.host.as_str(), c.port), ("localhost", 8500));
        assert!(!c.include_tag && !c.use_health_check && !c.fail_fast && !c.transfer_metadata);
        assert!(c.prefer_service_address);
        assert_eq!(c.health_statuses, [HealthStatus::Passing]);
        assert_eq!(c.consistency, Consistency::Default);
        assert_eq!(c.max_watches, 1000);
        assert_eq!(c.wait, Duration::from_secs(300));
        assert_eq!(c.pending_timeout, Duration::from_secs(1));
        assert_eq!(
            c.backoff,
            (Duration::from_millis(10), Duration::from_secs(5))
        );
        assert_eq!(c.validate(), Ok(()), "the defaults are valid");
    }

    #[test]
    fn validation_lists_every_problem() {
        let c = ConsulConfig {
            host: String::new(),
            max_watches: 0,
            wait: Duration::ZERO,
            backoff: (Duration::from_secs(2), Duration::from_secs(1)),
            token: Some("bad\ntoken".into()),
            weights: vec![("x".into(), f64::NAN)],
            use_health_check: true,
            health_statuses: vec![],
            ..ConsulConfig::default()
        };
        let err = c.validate().unwrap_err();
        for needle in [
            "host",
            "maxWatches",
            "wait",
            "backoff",
            "token",
            "weight",
            "healthStatuses",
        ] {
            assert!(err.contains(needle), "{needle} is reported: {err}");
        }
    }

    #[test]
    fn health_status_names_round_trip() {
        for h in [
            HealthStatus::Passing,
            HealthStatus::Warning,
            HealthStatus::Critical,
            HealthStatus::Maintenance,
        ] {
            assert_eq!(HealthStatus::parse(h.as_str()), Some(h));
        }
        assert_eq!(HealthStatus::parse("WARNING"), Some(HealthStatus::Warning));
        assert_eq!(HealthStatus::parse("bogus"), None);
        assert!(HealthStatus::Maintenance > HealthStatus::Critical);
        assert!(HealthStatus::Critical > HealthStatus::Warning);
        assert!(HealthStatus::Warning > HealthStatus::Passing);
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let c = ConsulConfig {
            host: "::1".into(),
            ..ConsulConfig::default()
        };
        assert_eq!(c.address(), "[::1]:8500");
        assert_eq!(c.validate(), Ok(()));
    }
}
