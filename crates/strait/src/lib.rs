//! Strait: a shared-node service-mesh router that speaks Linkerd 1's
//! `linkerd.yaml` and dtabs.
//!
//! This crate is the `strait` binary and the library behind it; the
//! request path itself (identify, bind, balance, forward) is
//! `strait-router`, naming is `strait-naming` and the namer crates. The
//! binary (`src/main.rs`) only calls [`cli::main`].
//!
//! * [`cli`]: the command line, one module per command group: `strait run
//!   --config PATH` serves a config ([`daemon`]), `strait check --config
//!   PATH` validates one ([`config::check_report`]), and `strait dtab …`
//!   ([`cli::dtab`]) holds offline tools for the dtab language of
//!   [`strait_dtab`] (parse and print canonically, look up, simplify,
//!   evaluate, bind through the system namers under `/$/`). Each prints
//!   one line (or one JSON document) and exits 0, or prints its error on
//!   stderr and exits 1; usage errors are clap's (exit 2).
//! * [`config`]: Linkerd 1's `linkerd.yaml`, read strictly into plain
//!   types with every error at once ([`config::parse`]), then lowered once
//!   per load into what the router and namers run on ([`config::lower`]).
//! * [`daemon`]: `strait run`: builds the namers ([`namers`]), routers and
//!   servers, serves until SIGTERM/SIGINT or `POST /admin/shutdown`, and
//!   reloads on SIGHUP or `POST /admin/reload`, swapping the whole state
//!   at once or keeping the old one ([`reload`] is the typed outcome).
//! * [`admin`]: the admin server, Linkerd 1's endpoints and JSON shapes
//!   (`/admin/metrics.json`, `/config.json`, `/delegator.json`, …), the
//!   dashboard (`/`) and the dtab playground (`/delegator`).
//! * [`sdnotify`]: systemd `Type=notify` readiness and reload messages.

pub mod admin;
pub mod admin_security;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod namers;
pub mod process;
pub mod reload;
pub mod sdnotify;
pub mod telemeters;
pub mod tls;
pub mod tls_client;
pub mod workers;
