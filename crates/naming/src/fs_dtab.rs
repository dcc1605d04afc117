//! The `io.l5d.fs` interpreter: the stored dtab is one file (`dtabFile`),
//! re-read when its directory changes.
//!
//! The file must be an existing regular file at start (`<path> is not a
//! file`). Its **directory** is watched (editors and `mv` replace the file,
//! which a watch on the file itself would lose), and the file is re-read
//! [`fs::DEBOUNCE`] after an event and every [`fs::RESCAN_INTERVAL`] in
//! case an event was lost. A good read publishes the dtab; a deleted file
//! is pending and invalid content is an error, both keeping the last good
//! dtab (logged loudly, shown in the admin's interpreter state). An empty
//! file (a valid, empty dtab) is taken only once it has stayed empty for
//! a quarter of a second: a file rewritten in place is empty for a moment.
//!
//! [`fs::DEBOUNCE`]: crate::fs::DEBOUNCE
//! [`fs::RESCAN_INTERVAL`]: crate::fs::RESCAN_INTERVAL

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Weak};

use notify::{RecursiveMode, Watcher};
use serde_json::{Value, json};
use strait_dtab::Dtab;
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

use crate::fs::{DEBOUNCE, RESCAN_INTERVAL};
use crate::stored::{DtabInterpreter, DtabStore, StoredDtab};

/// The `io.l5d.fs` interpreter's stored dtab; stops watching when dropped.
pub struct FsDtabInterpreter {
    file: Arc<PathBuf>,
    store: Arc<DtabStore>,
    _watcher: notify::RecommendedWatcher,
    task: AbortHandle,
}

impl fmt::Debug for FsDtabInterpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsDtabInterpreter")
            .field("dtab_file", &self.file)
            .finish_non_exhaustive()
    }
}

impl FsDtabInterpreter {
    /// Watches `dtab_file`, which must be a regular file; reads it once
    /// before returning. Must be called inside a tokio runtime.
    pub fn new(dtab_file: impl Into<PathBuf>) -> Result<FsDtabInterpreter, String> {
        let file = dtab_file.into();
        if !std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            return Err(format!("{} is not a file", file.display()));
        }
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let rt = Handle::try_current()
            .map_err(|_| "io.l5d.fs interpreter: needs a tokio runtime".to_owned())?;
        let wake = Arc::new(Notify::new());
        let mut watcher = notify::recommended_watcher({
            let wake = Arc::clone(&wake);
            move |res: notify::Result<notify::Event>| {
                if let Err(e) = &res {
                    tracing::warn!(error = %e, "io.l5d.fs interpreter: watch error; re-reading");
                }
                wake.notify_one();
            }
        })
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let store = Arc::new(DtabStore::new());
        let file = Arc::new(file);
        apply(&store, &file, std::fs::read_to_string(&*file));
        let task = rt
            .spawn(run(Arc::clone(&file), Arc::downgrade(&store), wake))
            .abort_handle();
        tracing::info!(file = %file.display(), "io.l5d.fs interpreter: watching");
        Ok(FsDtabInterpreter {
            file,
            store,
            _watcher: watcher,
            task,
        })
    }

    /// The file read.
    pub fn dtab_file(&self) -> &FsPath {
        &self.file
    }
}

impl Drop for FsDtabInterpreter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DtabInterpreter for FsDtabInterpreter {
    fn kind(&self) -> &'static str {
        "io.l5d.fs"
    }

    fn subscribe(&self) -> watch::Receiver<StoredDtab> {
        self.store.subscribe()
    }

    fn state(&self) -> Value {
        json!({ self.file.display().to_string(): self.store.state_json() })
    }
}

/// Applies one read of `file`.
fn apply(store: &DtabStore, file: &FsPath, read: std::io::Result<String>) {
    match read.map(|text| Dtab::read(&text)) {
        Ok(Ok(dtab)) => {
            if store.publish(dtab) {
                tracing::info!(file = %file.display(), "io.l5d.fs interpreter: new dtab");
            }
        }
        Ok(Err(e)) => {
            let message = format!("{}: dtab parsing failed: {e}", file.display());
            if store.fail(message.clone()) {
                tracing::error!("io.l5d.fs interpreter: {message}; keeping the last good dtab");
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if store.pending() {
                tracing::warn!(
                    file = %file.display(),
                    "io.l5d.fs interpreter: dtab file deleted; pending, the last good dtab stays"
                );
            }
        }
        Err(e) => {
            let message = format!("{}: {e}", file.display());
            if store.fail(message.clone()) {
                tracing::error!("io.l5d.fs interpreter: {message}; keeping the last good dtab");
            }
        }
    }
}

/// How long an empty read waits to be confirmed (see [`run`]).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Reads `file` on the blocking pool.
async fn read_file(file: &Arc<PathBuf>) -> Result<std::io::Result<String>, tokio::task::JoinError> {
    let path = Arc::clone(file);
    tokio::task::spawn_blocking(move || std::fs::read_to_string(&*path)).await
}

/// Re-reads the file after events and every [`RESCAN_INTERVAL`].
async fn run(file: Arc<PathBuf>, store: Weak<DtabStore>, wake: Arc<Notify>) {
    let mut tick = tokio::time::interval(RESCAN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = wake.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = tick.tick() => {}
        }
        let mut read = read_file(&file).await;
        // A file rewritten in place (a shell's `>`, `std::fs::write`) is
        // empty between its truncation and the write; a busy writer can
        // stall there past the debounce. An empty read counts only if the
        // file is still empty a moment later.
        if matches!(&read, Ok(Ok(text)) if text.trim().is_empty()) {
            tokio::time::sleep(SETTLE).await;
            read = read_file(&file).await;
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        match read {
            Ok(read) => apply(&store, &file, read),
            Err(e) => tracing::warn!(error = %e, "io.l5d.fs interpreter: read failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    async fn until(rx: &mut watch::Receiver<StoredDtab>, version: u64) {
        tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|s| s.version >= version),
        )
        .await
        .expect("in time")
        .expect("open");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_file_is_followed_and_bad_edits_keep_the_last_good_dtab() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dtab");
        assert_eq!(
            FsDtabInterpreter::new(&file).unwrap_err(),
            format!("{} is not a file", file.display())
        );
        assert!(FsDtabInterpreter::new(dir.path()).is_err(), "a directory");

        std::fs::write(&file, "/svc => /#/io.l5d.fs;").unwrap();
        let interp = FsDtabInterpreter::new(&file).unwrap();
        let mut rx = interp.subscribe();
        assert_eq!(rx.borrow().dtab.show(), "/svc=>/#/io.l5d.fs");
        assert_eq!(rx.borrow().version, 1);

        // A replace by rename, as editors do.
        let tmp = dir.path().join(".dtab.tmp");
        std::fs::write(&tmp, "/svc => /$/inet/127.1/1").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        until(&mut rx, 2).await;
        assert_eq!(rx.borrow().dtab.show(), "/svc=>/$/inet/127.1/1");

        std::fs::write(&file, "/svc => ").unwrap();
        let key = file.display().to_string();
        for _ in 0..200 {
            if interp.state()[&key]["state"].is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let state = interp.state();
        let error = state[&key]["state"].as_str().unwrap();
        assert!(error.contains("dtab parsing failed"), "{state}");
        assert_eq!(rx.borrow().dtab.show(), "/svc=>/$/inet/127.1/1");

        std::fs::remove_file(&file).unwrap();
        for _ in 0..200 {
            if interp.state()[&key]["state"] == "Still pending" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(interp.state()[&key]["state"], "Still pending");
        assert_eq!(rx.borrow().version, 2, "the last good dtab stays");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_emptied_file_is_an_empty_dtab_once_it_stays_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dtab");
        std::fs::write(&file, "/svc => /#/io.l5d.fs;").unwrap();
        let interp = FsDtabInterpreter::new(&file).unwrap();
        let mut rx = interp.subscribe();
        std::fs::write(&file, "").unwrap();
        until(&mut rx, 2).await;
        assert_eq!(rx.borrow().dtab.show(), "");
        assert_eq!(rx.borrow().version, 2);
    }
}
