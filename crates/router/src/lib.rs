//! The HTTP path of a Strait router.
//!
//! A request walks it in this order:
//!
//! 1. [`server`]: accept (from the server's [`clients`] networks only),
//!    terminate [`tls`] if the server has it, serve HTTP/1.1, apply
//!    `maxConcurrentRequests`,
//!    read the server's one snapshot (router, settings, limit);
//! 2. [`Router`]: clear or read the `l5d-*` context ([`headers`]), take
//!    the trace context ([`trace`]), name the request ([`identify`]);
//! 3. `binding` (logical -> concrete): bind the name through the dtab and
//!    the interpreter of `strait-naming`, pick a concrete name, and get its
//!    [`client`] and the name's [`service`], from a cache;
//! 4. [`attempt`] (concrete -> endpoint): pick an endpoint from the
//!    client's balancer, send, classify ([`retry`]), and decide: return,
//!    requeue, retry or fail; protocol-neutral;
//! 5. [`http1`]: HTTP/1's own rules (hop-by-hop headers, `Via`,
//!    absolute-form, a body kept for a second attempt) and its connection
//!    [`pool`];
//! 6. [`error`]: every failure on the way as one response.
//!
//! Metrics of servers, services and clients are in [`stats`]; the gauges
//! of requests in flight are guards, so a request cut short (a client gone,
//! a timeout) is never counted as in flight forever.
//!
//! It knows nothing of YAML: the daemon lowers `linkerd.yaml` into
//! [`RouterParams`] and [`ServerParams`]. A router's settings never change:
//! a reload builds a new [`Router`], which takes over the old one's clients
//! and services where their policies are unchanged.

pub mod accesslog;
pub mod attempt;
mod binding;
pub mod body;
pub mod client;
pub mod clients;
mod clock;
pub mod deadline;
pub mod descriptors;
pub mod error;
pub mod guard;
pub mod h2;
pub mod headers;
pub mod http1;
pub mod identify;
mod params;
pub mod policy;
pub mod pool;
pub mod recent;
pub mod retry;
mod router;
pub mod server;
pub mod service;
pub mod stats;
pub mod tls;
pub mod tls_client;
pub mod trace;

pub use binding::BindingLimits;
pub use params::{H2Settings, Protocol};
pub use router::{Body, Router, RouterParams, ServerLimits, ServerParams};
