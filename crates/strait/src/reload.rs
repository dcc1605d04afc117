//! What a config reload did: one typed outcome that feeds the
//! `config/reloads/{applied,rejected,unchanged}` counters, the log line and
//! `/admin/reload.json` (and the answer to `POST /admin/reload`).

use std::sync::Arc;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};
use strait_router::stats::{Counter, Registry, Scope};

/// The result of a reload, or of the start.
#[derive(Clone, Debug, PartialEq)]
pub enum ReloadResult {
    /// The config the process started with (no reload yet).
    Started,
    /// A new config is serving; `changes` summarises what changed.
    Applied {
        /// `routers added: …; dtabs changed: …`, or `no routing change`.
        changes: String,
    },
    /// The file parses to the config already serving.
    Unchanged,
    /// The file was refused whole; the running config stays.
    Rejected {
        /// One line per problem, `file:line:col: key: message` for config
        /// errors.
        errors: Vec<String>,
    },
}

impl ReloadResult {
    /// As written in the JSON: `started`, `applied`, `unchanged`, `rejected`.
    pub fn name(&self) -> &'static str {
        match self {
            ReloadResult::Started => "started",
            ReloadResult::Applied { .. } => "applied",
            ReloadResult::Unchanged => "unchanged",
            ReloadResult::Rejected { .. } => "rejected",
        }
    }
}

/// One reload attempt (or the start), as `/admin/reload.json` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadOutcome {
    /// What happened.
    pub result: ReloadResult,
    /// What asked for it: `SIGHUP`, `POST /admin/reload` (empty, and not
    /// shown, for [`ReloadResult::Started`]).
    pub source: &'static str,
    /// When it finished, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    /// How long reading, building and swapping took (not shown for
    /// [`ReloadResult::Started`]).
    pub duration: Duration,
    /// FNV-1a of the file now serving (or kept).
    pub config_hash: u64,
}

impl ReloadOutcome {
    /// The start, with the hash of the file the process started with.
    pub fn started(config_hash: u64) -> ReloadOutcome {
        ReloadOutcome {
            result: ReloadResult::Started,
            source: "",
            time: now_rfc3339(),
            duration: Duration::ZERO,
            config_hash,
        }
    }

    /// A reload asked for by `source` that just ended with `result`.
    pub fn now(
        result: ReloadResult,
        source: &'static str,
        duration: Duration,
        config_hash: u64,
    ) -> ReloadOutcome {
        ReloadOutcome {
            result,
            source,
            time: now_rfc3339(),
            duration,
            config_hash,
        }
    }

    /// `POST /admin/reload` answers 400 for this one.
    pub fn is_rejected(&self) -> bool {
        matches!(self.result, ReloadResult::Rejected { .. })
    }

    fn duration_ms(&self) -> f64 {
        self.duration.as_secs_f64() * 1000.0
    }

    /// The log lines of a reload (none for the start, which the daemon
    /// announces itself).
    pub fn log(&self) {
        let source = self.source;
        match &self.result {
            ReloadResult::Started => {}
            ReloadResult::Applied { changes } => {
                tracing::info!(source, changes = %changes, swap_ms = self.duration_ms(), "config reload applied");
            }
            ReloadResult::Unchanged => tracing::info!(source, "config reload: unchanged"),
            ReloadResult::Rejected { errors } => {
                tracing::error!(
                    source,
                    problems = errors.len(),
                    "config reload rejected; the running config stays"
                );
                for e in errors {
                    tracing::error!("{e}");
                }
            }
        }
    }

    /// The outcome as `/admin/reload.json` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// `{"result", "time", "configHash", "errors": []}` for the start;
/// `{"result", "source", "time", "durationMs", "changes", "errors",
/// "configHash"}` for a reload (`changes` empty unless applied, `errors`
/// empty unless rejected).
impl Serialize for ReloadOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hash = format!("{:016x}", self.config_hash);
        let no_errors: &[String] = &[];
        let errors = match &self.result {
            ReloadResult::Rejected { errors } => errors.as_slice(),
            _ => no_errors,
        };
        if self.result == ReloadResult::Started {
            let mut m = s.serialize_map(Some(4))?;
            m.serialize_entry("result", self.result.name())?;
            m.serialize_entry("time", &self.time)?;
            m.serialize_entry("configHash", &hash)?;
            m.serialize_entry("errors", errors)?;
            return m.end();
        }
        let changes = match &self.result {
            ReloadResult::Applied { changes } => changes.as_str(),
            _ => "",
        };
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("result", self.result.name())?;
        m.serialize_entry("source", self.source)?;
        m.serialize_entry("time", &self.time)?;
        m.serialize_entry("durationMs", &self.duration_ms())?;
        m.serialize_entry("changes", changes)?;
        m.serialize_entry("errors", errors)?;
        m.serialize_entry("configHash", &hash)?;
        m.end()
    }
}

/// `config/reloads/{applied,rejected,unchanged}`.
#[derive(Clone, Debug)]
pub struct ReloadCounters {
    applied: Arc<Counter>,
    rejected: Arc<Counter>,
    unchanged: Arc<Counter>,
}

impl ReloadCounters {
    /// Registers the three counters in `registry`.
    pub fn register(registry: &Registry) -> ReloadCounters {
        let scope = Scope::Root("config/reloads".into());
        ReloadCounters {
            applied: registry.counter(&scope, "applied"),
            rejected: registry.counter(&scope, "rejected"),
            unchanged: registry.counter(&scope, "unchanged"),
        }
    }

    /// Counts `result` (the start is not a reload).
    pub fn count(&self, result: &ReloadResult) {
        match result {
            ReloadResult::Started => {}
            ReloadResult::Applied { .. } => self.applied.incr(),
            ReloadResult::Unchanged => self.unchanged.incr(),
            ReloadResult::Rejected { .. } => self.rejected.incr(),
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
fn now_rfc3339() -> String {
    let t = strait_router::accesslog::clf_time(std::time::SystemTime::now());
    // dd/MM/yyyy:HH:mm:ss +0000 -> yyyy-MM-ddTHH:mm:ssZ
    let (date, rest) = t.split_once(':').unwrap_or((&t, ""));
    let mut d = date.split('/');
    let (dd, mm, yy) = (
        d.next().unwrap_or(""),
        d.next().unwrap_or(""),
        d.next().unwrap_or(""),
    );
    format!("{yy}-{mm}-{dd}T{}Z", rest.split(' ').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(result: ReloadResult) -> ReloadOutcome {
        ReloadOutcome {
            result,
            source: "SIGHUP",
            time: "2024-05-01T10:00:00Z".into(),
            duration: Duration::from_micros(1500),
            config_hash: 0xab,
        }
    }

    /// The JSON the untyped outcome had, key order included.
    #[test]
    fn json_is_what_it_was() {
        let cases = [
            (
                ReloadOutcome {
                    source: "",
                    duration: Duration::ZERO,
                    ..at(ReloadResult::Started)
                },
                json!({"result": "started", "time": "2024-05-01T10:00:00Z",
                       "configHash": "00000000000000ab", "errors": []}),
            ),
            (
                at(ReloadResult::Applied {
                    changes: "dtabs changed: http".into(),
                }),
                json!({"result": "applied", "source": "SIGHUP", "time": "2024-05-01T10:00:00Z",
                       "durationMs": 1.5, "changes": "dtabs changed: http", "errors": [],
                       "configHash": "00000000000000ab"}),
            ),
            (
                at(ReloadResult::Unchanged),
                json!({"result": "unchanged", "source": "SIGHUP", "time": "2024-05-01T10:00:00Z",
                       "durationMs": 1.5, "changes": "", "errors": [],
                       "configHash": "00000000000000ab"}),
            ),
            (
                at(ReloadResult::Rejected {
                    errors: vec!["a".into(), "b".into()],
                }),
                json!({"result": "rejected", "source": "SIGHUP", "time": "2024-05-01T10:00:00Z",
                       "durationMs": 1.5, "changes": "", "errors": ["a", "b"],
                       "configHash": "00000000000000ab"}),
            ),
        ];
        for (outcome, want) in cases {
            let got = outcome.to_json();
            assert_eq!(got, want);
            assert_eq!(
                format!("{got:#}"),
                format!("{want:#}"),
                "same text, same key order"
            );
            assert_eq!(
                outcome.is_rejected(),
                matches!(outcome.result, ReloadResult::Rejected { .. })
            );
        }
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
