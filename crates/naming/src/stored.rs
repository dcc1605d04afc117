//! Stored dtabs: the dtab an interpreter (`io.l5d.fs`,
//! `io.l5d.consul.interpreter`) keeps outside `linkerd.yaml` and puts in
//! front of the router's: **stored ++ router dtab ++ l5d-ctx-dtab ++
//! l5d-dtab** (later dentries win).
//!
//! An interpreter publishes through a [`DtabStore`]: a
//! `tokio::sync::watch` of the last good [`StoredDtab`] (a router checks
//! it with one atomic load per request) beside a status for the admin
//! (`Still pending`, the dtab, or why the last read failed). A failed read
//! never replaces the last good dtab.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use strait_dtab::Dtab;
use tokio::sync::watch;

/// The last good stored dtab.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredDtab {
    /// Bumped each time the dtab changes; 0 until the first good read.
    pub version: u64,
    /// The dtab (empty until the first good read).
    pub dtab: Arc<Dtab>,
}

impl StoredDtab {
    /// Whether a first good read happened.
    pub fn is_ready(&self) -> bool {
        self.version > 0
    }
}

/// A running interpreter with a stored dtab, as the router and the admin
/// see it.
pub trait DtabInterpreter: Send + Sync + fmt::Debug {
    /// Its `kind` in `linkerd.yaml` (`io.l5d.fs`, `io.l5d.consul.interpreter`).
    fn kind(&self) -> &'static str;
    /// The last good stored dtab, live.
    fn subscribe(&self) -> watch::Receiver<StoredDtab>;
    /// The admin's `interpreter_state` JSON: `{"<namespace or file>":
    /// {"state": {"version", "dtab"} | "Still pending" | "<error>", ...}}`.
    fn state(&self) -> Value;
}

/// What the last read said.
#[derive(Clone, Debug, PartialEq)]
enum Status {
    Pending,
    Ok,
    Failed(String),
}

/// The publishing side: the watch of the last good dtab and the status.
#[derive(Debug)]
pub struct DtabStore {
    tx: watch::Sender<StoredDtab>,
    status: Mutex<Status>,
}

impl Default for DtabStore {
    fn default() -> Self {
        DtabStore {
            tx: watch::channel(StoredDtab::default()).0,
            status: Mutex::new(Status::Pending),
        }
    }
}

impl DtabStore {
    /// A store with no dtab yet (pending).
    pub fn new() -> DtabStore {
        DtabStore::default()
    }

    /// A receiver of the last good dtab.
    pub fn subscribe(&self) -> watch::Receiver<StoredDtab> {
        self.tx.subscribe()
    }

    /// The last good dtab.
    pub fn current(&self) -> StoredDtab {
        self.tx.borrow().clone()
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A good read: publishes `dtab` (a new version only if it differs, or
    /// is the first). Whether routing changes.
    pub fn publish(&self, dtab: Dtab) -> bool {
        *self.status() = Status::Ok;
        self.tx.send_if_modified(|cur| {
            if cur.is_ready() && *cur.dtab == dtab {
                return false;
            }
            cur.version += 1;
            cur.dtab = Arc::new(dtab);
            true
        })
    }

    /// A failed read: the last good dtab stays. Whether the status changed
    /// (so callers log each new failure once, not every retry).
    pub fn fail(&self, message: String) -> bool {
        let mut s = self.status();
        let new = Status::Failed(message);
        let changed = *s != new;
        *s = new;
        changed
    }

    /// Nothing to read (a deleted file): the last good dtab stays.
    pub fn pending(&self) -> bool {
        let mut s = self.status();
        let changed = *s != Status::Pending;
        *s = Status::Pending;
        changed
    }

    /// `{"state": ..., "lastGood": ...}`: the state is `{"version",
    /// "dtab"}` after a good read, `"Still pending"`, or the error; a
    /// failed or pending store also shows the dtab still routing.
    pub fn state_json(&self) -> Value {
        let cur = self.current();
        let good = json!({"version": cur.version.to_string(), "dtab": cur.dtab.show()});
        match self.status().clone() {
            Status::Ok => json!({ "state": good }),
            Status::Pending => json!({ "state": "Still pending", "lastGood": good }),
            Status::Failed(e) => json!({ "state": e, "lastGood": good }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn versions_move_only_on_change_and_failures_keep_the_dtab() {
        let store = DtabStore::new();
        let rx = store.subscribe();
        assert!(!rx.borrow().is_ready());
        assert_eq!(store.state_json()["state"], "Still pending");
        assert!(store.publish(Dtab::read("/a=>/b").unwrap()));
        assert_eq!(rx.borrow().version, 1);
        assert!(!store.publish(Dtab::read("/a => /b").unwrap()), "same dtab");
        assert!(store.fail("bad".into()));
        assert!(!store.fail("bad".into()), "logged once");
        assert_eq!(rx.borrow().dtab.show(), "/a=>/b");
        assert_eq!(store.state_json()["state"], "bad");
        assert_eq!(store.state_json()["lastGood"]["dtab"], "/a=>/b");
        assert!(store.publish(Dtab::empty()));
        assert_eq!(rx.borrow().version, 2);
        assert_eq!(store.state_json()["state"]["version"], "2");
    }
}
