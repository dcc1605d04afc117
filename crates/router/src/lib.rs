//! The HTTP path of a Strait router.
//!
//! This crate owns what happens to a request between accepting it and
//! answering it: identification ([`identify`]), binding through the
//! interpreter of `strait-naming` (logical name `/svc/hello` -> concrete
//! name `/#/io.l5d.fs/hello`), the client of each concrete name and its
//! endpoint selection ([`client`]) and connections ([`pool`]), forwarding
//! with header rewriting ([`headers`]), the single error-to-response map
//! ([`error`]) and the metrics of servers, services and clients
//! ([`stats`]).
//!
//! It knows nothing of YAML: the daemon turns `linkerd.yaml` into
//! [`RouterParams`] and [`ServerParams`]. A [`Router`] is immutable; the
//! daemon swaps a whole new one in on reload.

pub mod accesslog;
pub mod body;
pub mod client;
pub mod deadline;
pub mod error;
pub mod headers;
pub mod identify;
pub mod policy;
pub mod pool;
pub mod retry;
mod router;
pub mod server;
pub mod service;
pub mod stats;

pub use router::{Body, Router, RouterParams, ServerParams};
