//! Linkerd 1's `linkerd.yaml`, read strictly.
//!
//! [`load`] and [`parse`] turn a YAML or JSON file (YAML 1.2 reads JSON
//! as it is) into a [`Config`]: plain domain types with every default of
//! Linkerd 1's config docs filled in. Reading never stops at the first
//! problem: every error comes back at once, each a [`ConfigError`] with
//! `file:line:col`, the key path (`routers[0].servers[1].port`) and a
//! message. Strict with operators:
//!
//! * unknown keys are errors, with "did you mean" for near misses;
//! * duplicate keys are errors (Jackson's `STRICT_DUPLICATE_DETECTION`);
//! * Linkerd 1 features Strait does not implement yet are refused by name,
//!   never silently ignored;
//! * anchors, aliases and tags are refused rather than half-understood;
//! * quoted numbers are strings (`port: "4140"` is an error), `null`/`~`
//!   mean absent;
//! * Linkerd's cross-field checks: at least one router, unique router
//!   labels (`ConflictingLabels`), no two listeners on one address
//!   (`ConflictingPorts`, the admin server included), every router has a
//!   server, unique namer prefixes.
//!
//! How: `saphyr-parser` events become a small positioned tree (`tree`),
//! which hand-written readers (`read`, `schema`) walk, collecting errors.
//! serde is used only to *print* a [`Config`] (for `/config.json`); the
//! JSON printed is itself a valid config.
//!
//! [`lower`] then turns a checked [`Config`] into the router's parameters
//! and policy tables and the namers' settings, once per load or reload.

use std::fmt;
use std::io::Read;
use std::path::Path;

mod client_tls;
mod client_tls_files;
mod interpreter;
pub mod lower;
mod policy;
mod read;
mod schema;
pub mod tls;
mod tree;
mod types;

#[cfg(test)]
#[path = "accesslog_tests.rs"]
mod accesslog_tests;

pub use client_tls::{ClientAuthConfig, ClientTlsConfig};
pub use interpreter::{
    ConsulInterpreterConfig, InterpreterConfig, InterpreterKind, consul_kv_config,
};
pub use tls::ServerTlsConfig;
pub use types::{
    AdminConfig, AdminSecurityConfig, BackoffConfig, BindingCacheConfig, BindingLimitsConfig,
    BudgetConfig, ClassifierKind, ClientConfig, ClientParams, ClientParamsPatch,
    ClientPrefixConfig, Config, ConsistencyMode, ConsulConfig, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_ERR_RESPONSE_KB, DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_MAX_HEADERS_KB, DEFAULT_MAX_INITIAL_LINE_KB, DEFAULT_RESPONSE_SEND_TIMEOUT,
    DEFAULT_UPGRADE_IDLE_TIMEOUT, DnsSrvNamerConfig, Experimental, FailureAccrualConfig,
    ForwardedConfig, ForwardedLabeler, FsNamerConfig, GrpcCodeSet, H2EndpointConfig, HealthStatus,
    IdentifierConfig, LoadBalancerConfig, NamerConfig, PoolConfig, Protocol, RetriesConfig,
    RetriesPatch, RetryBufferConfig, RewriteNamerConfig, RouterConfig, ServerConfig, ServiceConfig,
    ServiceParams, ServiceParamsPatch, ServicePrefixConfig, TagWeight, TelemeterConfig,
    TransformerConfig, UsageConfig,
};

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as named to [`load`] or [`parse`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Where in the document: `routers[0].servers[1].port`, or
    /// `(document)` for the file as a whole (syntax errors, unreadable
    /// file).
    pub key_path: String,
    /// What is wrong, and where it helps, what to do.
    pub message: String,
}

impl ConfigError {
    /// An error at `pos` in `file`; an empty `path` is the document itself.
    pub(crate) fn at(file: &str, pos: tree::Pos, path: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: pos.line,
            col: pos.col,
            key_path: if path.is_empty() {
                "(document)".to_owned()
            } else {
                path.to_owned()
            },
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, self.key_path, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Reads and parses the config at `path`; `-` reads standard input (as
/// Linkerd's `linkerd -` does). An unreadable file is one error.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_with_warnings(path).map(|(c, _)| c)
}

/// [`load`], with the warnings of a valid config (sorted by position).
pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<ConfigError>), Vec<ConfigError>> {
    let file = if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    match text {
        Ok(text) => parse_with_warnings(&text, &file),
        Err(e) => Err(vec![ConfigError {
            file,
            line: 1,
            col: 1,
            key_path: "(document)".to_owned(),
            message: format!("cannot read the config file: {e}"),
        }]),
    }
}

/// Parses config `text`; `file` names it in errors. Errors come sorted by
/// position.
pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    parse_with_warnings(text, file).map(|(c, _)| c)
}

/// [`parse`], with the warnings of a valid config (sorted by position):
/// things that work but that an operator should know, such as an admin
/// bound off loopback.
pub fn parse_with_warnings(
    text: &str,
    file: &str,
) -> Result<(Config, Vec<ConfigError>), Vec<ConfigError>> {
    let (root, tree_errors) = tree::parse(text, file)?;
    let mut cx = read::Ctx {
        file,
        source: text,
        errors: tree_errors,
        warnings: Vec::new(),
    };
    let config = schema::config(&mut cx, &root);
    let mut errors = cx.errors;
    let mut warnings = cx.warnings;
    warnings.sort_by_key(|e| (e.line, e.col));
    match config {
        Some(config) if errors.is_empty() => Ok((config, warnings)),
        _ => {
            // Stable: errors at one position keep the order they were found.
            errors.sort_by_key(|e| (e.line, e.col));
            Err(errors)
        }
    }
}

/// What `strait check --config PATH` prints, and whether the config is
/// valid: `<file>: ok (1 router, 2 namers)` after any warnings (one per
/// line, `file:line:col: key.path: warning: ...`), or every error, one per
/// line. Warnings never make a config invalid.
pub fn check_report(path: &Path) -> (String, bool) {
    match load_with_warnings(path) {
        Ok((config, warnings)) => {
            let mut lines: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            lines.push(summary(&path.display().to_string(), &config));
            (lines.join("\n"), true)
        }
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            (lines.join("\n"), false)
        }
    }
}

/// `<file>: ok (1 router, 2 namers)`.
fn summary(file: &str, config: &Config) -> String {
    fn count(n: usize, what: &str) -> String {
        if n == 1 {
            format!("{n} {what}")
        } else {
            format!("{n} {what}s")
        }
    }
    format!(
        "{file}: ok ({}, {})",
        count(config.routers.len(), "router"),
        count(config.namers.len(), "namer")
    )
}

#[cfg(test)]
mod h2_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn error_display_is_file_line_col_path_message() {
        let e = ConfigError {
            file: "linkerd.yaml".to_owned(),
            line: 3,
            col: 7,
            key_path: "admin.port".to_owned(),
            message: "expected an integer".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "linkerd.yaml:3:7: admin.port: expected an integer"
        );
    }

    #[test]
    fn unreadable_file_is_one_error() {
        let errors = match load(Path::new("/nonexistent/strait/linkerd.yaml")) {
            Ok(c) => panic!("loaded {c:?}"),
            Err(e) => e,
        };
        assert_eq!(errors.len(), 1, "an unreadable file is exactly one error");
        assert!(
            errors[0].to_string().starts_with(
                "/nonexistent/strait/linkerd.yaml:1:1: (document): cannot read the config file: "
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn check_report_summarises_success_and_lists_failures() {
        let dir = std::env::temp_dir().join(format!("strait-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(
            &good,
            "routers:\n- protocol: http\n  servers:\n  - port: 0\n",
        )
        .unwrap();
        let (out, ok) = check_report(&good);
        assert!(ok);
        assert_eq!(out, format!("{}: ok (1 router, 0 namers)", good.display()));

        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "routers: []\nadmin: {port: x}\n").unwrap();
        let (out, ok) = check_report(&bad);
        assert!(!ok);
        let file = bad.display();
        assert_eq!(
            out,
            format!(
                "{file}:1:10: routers: no routers specified; a config needs at least one router\n\
                 {file}:2:15: admin.port: expected an integer, found 'x'"
            ),
            "every error, one per line, in file order"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
