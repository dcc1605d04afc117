//! Endpoint selection and failure accrual for one client of Strait.
//!
//! This crate owns the *policy* half of load balancing, as Linkerd 1 (via
//! Finagle) defines it: which endpoint a request goes to (`p2c` least
//! loaded, peak-`ewma`, weighted `roundRobin`), how many times to redraw when
//! a pick lands on a dead endpoint (`maxEffort`), what to do when everything
//! is dead (panic mode: pick anyway, never refuse), and when an endpoint is
//! dead at all (failure accrual: consecutive failures, success rate over
//! requests or over time, with a backoff and exactly one probe at a time).
//! The measuring ideas are borrowed: tower's `load::PeakEwma` and
//! linkerd2-proxy's 1 ms RTT floor and "a request counts until its body
//! ends" (the router holds the [`Lease`] until then).
//!
//! Where Strait deliberately differs from Finagle's failure accrual:
//!
//! - **A success revives.** A request sent to a dead endpoint (in panic
//!   mode, when every endpoint is dead or a pick's draws all are) that
//!   succeeds revives it at once, exactly as a successful probe does (policy
//!   and backoff reset, counted in `revivals`). Finagle ignores such
//!   successes and waits for the one probe after the backoff, so after an
//!   outage that marked the whole set dead, endpoints that serve again stay
//!   "dead" for the full backoff, and one that then crashes keeps its share
//!   of panic picks. A mesh must not keep shedding endpoints that serve;
//!   Envoy bounds ejection with `max_ejection_percent` for the same reason.
//!   Successes of requests picked before the endpoint died still do not
//!   revive it, and failures on a dead endpoint still change nothing.
//! - **A refused connection marks dead at once.** [`Outcome::NotConnected`]
//!   (nothing was sent) is unambiguous: the endpoint is marked dead and its
//!   backoff starts, without waiting for the policy (five consecutive
//!   failures by default); with accrual `none` it is only a failure.
//!
//! [`Balancer::has_usable_except`] tells a caller deciding whether to send a
//! never-sent request elsewhere whether any other endpoint is not known to
//! be failing.
//!
//! It does not know dtabs, names, HTTP or YAML: the router feeds it plain
//! `(SocketAddr, weight)` sets and [`Outcome`]s it classified itself, and
//! `strait::config` turns `linkerd.yaml` into the plain types of [`config`].
//! Clock and RNG are injected ([`Clock`], a seed) so every test here runs
//! on a [`ManualClock`] without sleeping.
//!
//! ```
//! use std::sync::Arc;
//! use strait_balancer::{Balancer, FailureAccrual, LoadBalancer, Outcome, SystemClock};
//!
//! let b = Balancer::new(LoadBalancer::default(), FailureAccrual::default(), Arc::new(SystemClock), 1);
//! b.update(&[("127.0.0.1:8080".parse().unwrap(), 1.0)]);
//! let lease = b.pick(None).unwrap();
//! assert_eq!(lease.addr().port(), 8080);
//! lease.finish(Outcome::Success);
//! ```

mod backoff;
mod balancer;
mod clock;
pub mod config;
mod endpoint;
mod rng;

pub use backoff::BackoffStream;
pub use balancer::{Balancer, BalancerStats, Change, EndpointInfo, Lease, Observer, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Backoff, FailureAccrual, LoadBalancer};
