//! Strait: a shared-node service-mesh router that speaks Linkerd 1's
//! `linkerd.yaml` and dtabs.
//!
//! This crate is the `strait` binary and the library behind it. The binary
//! (`src/main.rs`) only calls [`cli::main`]; the command line is defined in
//! [`cli`], one module per command group:
//!
//! * `strait dtab …` ([`cli::dtab`]): offline tools for the dtab language of
//!   [`strait_dtab`] — parse and print canonically, look up, simplify,
//!   evaluate, and bind through the system namers under `/$/`.
//!
//! Each command prints one line (text or one compact JSON document) on
//! stdout and exits 0, or prints its error on stderr and exits 1. Usage
//! errors are clap's (exit 2).

pub mod admin;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod namers;
pub mod reload;
pub mod sdnotify;
