//! Who may use which admin path: Linkerd's `admin.security` block (UI,
//! control and diagnostics categories, path white- and blacklists), and
//! Strait's bearer token for the control endpoints (`admin.tokenFile`).
//!
//! Order: the blacklist, then the category, then the whitelist decide
//! whether a path exists at all (a bare 404 when not, as Linkerd's
//! `SecurityFilter`); a served control path then needs the token when one
//! is configured (401 without it, 403 with a wrong one), and is refused
//! (403) on an admin bound off loopback without a token.

use std::net::IpAddr;

use regex::Regex;
use serde_json::Value;

use crate::config::{AdminConfig, AdminSecurityConfig};

/// A path's category in Linkerd's `SecurityFilter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// The dashboard and what it reads.
    Ui,
    /// Endpoints that change state.
    Control,
    /// Everything else (ping, metrics exports, client state...).
    Diagnostics,
}

/// Linkerd's categories (linkerd1-next §6.3), plus Strait's `/admin/reload`
/// as control (it changes state, like `/admin/shutdown`).
pub fn category(path: &str) -> Category {
    match path {
        "/"
        | "/config.json"
        | "/metrics.json"
        | "/admin/metrics.json"
        | "/admin/metrics"
        | "/delegator"
        | "/delegator.json"
        | "/logging"
        | "/help" => Category::Ui,
        p if p.starts_with("/files/") || p.starts_with("/admin/files/") => Category::Ui,
        "/admin/shutdown" | "/logging.json" | "/admin/reload" => Category::Control,
        _ => Category::Diagnostics,
    }
}

/// What the admin server does with one request, before its handler.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Serve,
    /// A bare 404: the path is filtered out by `security`.
    Hidden,
    /// 401: a control path without `Authorization: Bearer`.
    Unauthorized,
    /// 403, with the reason.
    Forbidden(&'static str),
}

/// The admin's access rules, built once per config.
#[derive(Debug)]
pub struct AdminGuard {
    ui: bool,
    control: bool,
    diagnostics: bool,
    whitelist: Vec<Regex>,
    blacklist: Vec<Regex>,
    token: Option<Vec<u8>>,
    loopback: bool,
}

impl Default for AdminGuard {
    fn default() -> Self {
        AdminGuard::open(&AdminSecurityConfig::default(), None, true)
    }
}

/// `re` over the whole path.
fn whole(re: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{re})$")).ok()
}

impl AdminGuard {
    fn open(s: &AdminSecurityConfig, token: Option<Vec<u8>>, loopback: bool) -> AdminGuard {
        AdminGuard {
            ui: s.ui_enabled,
            control: s.control_enabled,
            diagnostics: s.diagnostics_enabled,
            // The config reader checked every regex.
            whitelist: s.path_whitelist.iter().filter_map(|r| whole(r)).collect(),
            blacklist: s.path_blacklist.iter().filter_map(|r| whole(r)).collect(),
            token,
            loopback,
        }
    }

    /// The guard of `admin`, reading its token file; an unreadable or
    /// empty token file is an error (the admin must not start open).
    pub fn new(admin: &AdminConfig) -> Result<AdminGuard, String> {
        let token = match &admin.token_file {
            None => None,
            Some(p) => {
                let text = std::fs::read(p)
                    .map_err(|e| format!("admin.tokenFile {}: {e}", p.display()))?;
                let token = text.trim_ascii().to_vec();
                if token.is_empty() {
                    return Err(format!(
                        "admin.tokenFile {}: the file is empty",
                        p.display()
                    ));
                }
                Some(token)
            }
        };
        Ok(AdminGuard::open(
            &admin.security,
            token,
            is_loopback(admin.ip),
        ))
    }

    /// Whether `path` (no query) exists under `security`.
    pub fn allows(&self, path: &str) -> bool {
        if self.blacklist.iter().any(|r| r.is_match(path)) {
            return false;
        }
        let on = match category(path) {
            Category::Ui => self.ui,
            Category::Control => self.control,
            Category::Diagnostics => self.diagnostics,
        };
        on || self.whitelist.iter().any(|r| r.is_match(path))
    }

    /// The verdict on a request for `path` carrying `authorization`.
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Verdict {
        if !self.allows(path) {
            return Verdict::Hidden;
        }
        if category(path) != Category::Control {
            return Verdict::Serve;
        }
        let Some(token) = &self.token else {
            return if self.loopback {
                Verdict::Serve
            } else {
                Verdict::Forbidden(
                    "control endpoints are refused on an admin bound off loopback without \
                     admin.tokenFile\n",
                )
            };
        };
        let given = authorization.and_then(|h| {
            let (scheme, rest) = h.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"bearer ")
                .then(|| rest.trim_ascii())
        });
        match given {
            None => Verdict::Unauthorized,
            Some(g) if constant_time_eq(g, token) => Verdict::Serve,
            Some(_) => Verdict::Forbidden("wrong admin token\n"),
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Compares without an early exit on the first differing byte (the length
/// is not hidden: the token's length is not the secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Replaces the value of every field named like a secret (`token`,
/// `password`, `secret`, `privateKey`, ...; any case, any depth) with
/// `"<redacted>"`, for `/config.json`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if is_secret(k) && !v.is_null() {
                    *v = Value::String("<redacted>".to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("token")
        || k.contains("password")
        || k.contains("secret")
        || k.ends_with("privatekey")
        || k == "key"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn guard(s: AdminSecurityConfig, token: Option<&str>, loopback: bool) -> AdminGuard {
        AdminGuard::open(&s, token.map(|t| t.as_bytes().to_vec()), loopback)
    }

    #[test]
    fn categories_follow_linkerd() {
        for p in [
            "/",
            "/files/app.js",
            "/admin/files/x",
            "/config.json",
            "/metrics.json",
            "/admin/metrics.json",
            "/admin/metrics",
            "/delegator",
            "/delegator.json",
            "/logging",
            "/help",
        ] {
            assert_eq!(category(p), Category::Ui, "{p}");
        }
        for p in ["/admin/shutdown", "/logging.json", "/admin/reload"] {
            assert_eq!(category(p), Category::Control, "{p}");
        }
        for p in [
            "/admin/ping",
            "/admin/metrics/prometheus",
            "/requests",
            "/client_state.json",
            "/metrics",
            "/admin/reload.json",
        ] {
            assert_eq!(category(p), Category::Diagnostics, "{p}");
        }
    }

    #[test]
    fn blacklist_first_then_category_then_whitelist() {
        let g = guard(
            AdminSecurityConfig {
                diagnostics_enabled: false,
                path_whitelist: vec!["/admin/ping".into(), "/config.*".into()],
                path_blacklist: vec!["/config\\.json".into(), "/admin/metrics.*".into()],
                ..AdminSecurityConfig::default()
            },
            None,
            true,
        );
        assert!(g.allows("/admin/ping"), "whitelisted diagnostics");
        assert!(!g.allows("/client_state.json"), "diagnostics off");
        assert!(!g.allows("/config.json"), "blacklist beats the whitelist");
        assert!(
            !g.allows("/admin/metrics.json"),
            "blacklist beats the category"
        );
        assert!(g.allows("/delegator.json"), "UI on");
        assert!(
            !g.allows("/x/admin/ping"),
            "a regex matches the whole path, not a part"
        );
        assert_eq!(g.check("/client_state.json", None), Verdict::Hidden);
        let off = guard(
            AdminSecurityConfig {
                control_enabled: false,
                ..AdminSecurityConfig::default()
            },
            Some("t"),
            true,
        );
        assert_eq!(
            off.check("/admin/shutdown", Some(b"Bearer t")),
            Verdict::Hidden
        );
    }

    #[test]
    fn control_needs_the_token_when_one_is_set() {
        let g = guard(AdminSecurityConfig::default(), Some("s3cret"), true);
        assert_eq!(g.check("/admin/shutdown", None), Verdict::Unauthorized);
        assert!(matches!(
            g.check("/admin/reload", Some(b"Bearer nope")),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            g.check("/admin/reload", Some(b"Basic s3cret")),
            Verdict::Unauthorized
        ));
        assert_eq!(
            g.check("/admin/reload", Some(b"bearer s3cret")),
            Verdict::Serve
        );
        assert_eq!(g.check("/admin/ping", None), Verdict::Serve);
        let open = guard(AdminSecurityConfig::default(), None, true);
        assert_eq!(open.check("/admin/shutdown", None), Verdict::Serve);
        let exposed = guard(AdminSecurityConfig::default(), None, false);
        assert!(matches!(
            exposed.check("/admin/shutdown", None),
            Verdict::Forbidden(_)
        ));
        assert_eq!(exposed.check("/admin/ping", None), Verdict::Serve);
    }

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut v = serde_json::json!({
            "namers": [{"kind": "io.l5d.consul", "token": "abc", "host": "h"}],
            "admin": {"tokenFile": "/etc/strait/admin.token"},
            "x": {"password": "p", "clientSecret": "s", "token": null},
        });
        redact(&mut v);
        assert_eq!(v["namers"][0]["token"], "<redacted>");
        assert_eq!(v["namers"][0]["host"], "h");
        assert_eq!(v["admin"]["tokenFile"], "/etc/strait/admin.token");
        assert_eq!(v["x"]["password"], "<redacted>");
        assert_eq!(v["x"]["clientSecret"], "<redacted>");
        assert!(v["x"]["token"].is_null());
    }
}
