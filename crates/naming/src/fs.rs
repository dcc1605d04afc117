//! `io.l5d.fs`: one file per service under a root directory.
//!
//! `/#/io.l5d.fs/hello` is the file `<rootDir>/hello`; directories nest, so
//! `/#/io.l5d.fs/a/b` is `<rootDir>/a/b` when `<rootDir>/a` is a directory.
//! The elements after the file are the residual.
//!
//! A file holds one address per line (Linkerd 1's `WatchingNamer`):
//!
//! ```text
//! # comments start with '#', blank lines are skipped
//! 127.0.0.1 8080
//! 10.0.0.2  8080 * 2.5      # host port * weight
//! backend.example 9000      # host names are resolved when the file is read
//! ```
//!
//! Any malformed line makes the whole service [`Addr::Failed`], quoting the
//! line; an empty file is an empty bound set; a missing file is `Neg`.
//!
//! The directory is watched with inotify (one recursive watcher): changes,
//! including files renamed into place, apply within [`DEBOUNCE`] plus a
//! read. Everything watched is also re-read every [`RESCAN_INTERVAL`] in
//! case an event was lost, which also re-resolves host names.
//!
//! Path elements come from untrusted input (HTTP `Host` headers): an element
//! that is not UTF-8, contains `/` or NUL, or starts with `.` (so `.`, `..`,
//! hidden and editor temporary files) never reaches the file system and
//! makes the lookup `Neg`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use strait_dtab::{Bound, Name, NameTree, Path, State};
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

use crate::{Activity, Addr, AddrVar, Endpoint, LookupTree, Namer};

/// How long to wait after a file-system event for more events before
/// re-reading (an editor's save is often several events).
pub const DEBOUNCE: Duration = Duration::from_millis(20);

/// How often everything watched is re-read even without events.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(5);

/// How long resolving one host name may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an [`FsNamer`] could not be created.
#[derive(Debug)]
pub enum FsError {
    /// `rootDir` does not exist.
    NotFound(PathBuf),
    /// `rootDir` exists but is not a directory.
    NotADirectory(PathBuf),
    /// `rootDir` could not be inspected.
    Unreadable(PathBuf, std::io::Error),
    /// The directory could not be watched (e.g. the inotify limits).
    Watch(PathBuf, notify::Error),
    /// [`FsNamer::new`] was called outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotFound(d) => write!(f, "io.l5d.fs: rootDir {} does not exist", d.display()),
            FsError::NotADirectory(d) => {
                write!(f, "io.l5d.fs: rootDir {} is not a directory", d.display())
            }
            FsError::Unreadable(d, e) => {
                write!(f, "io.l5d.fs: cannot read rootDir {}: {e}", d.display())
            }
            FsError::Watch(d, e) => {
                write!(f, "io.l5d.fs: cannot watch rootDir {}: {e}", d.display())
            }
            FsError::NoRuntime => f.write_str("io.l5d.fs: must be created inside a tokio runtime"),
        }
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FsError::Unreadable(_, e) => Some(e),
            FsError::Watch(_, e) => Some(e),
            _ => None,
        }
    }
}

/// The `io.l5d.fs` namer: services are files under a watched directory.
///
/// Lookups of one path share one live answer, and lookups reaching one file
/// share one address set. A lookup does a few `stat` calls and, the first
/// time a file is needed, reads it; everything later happens on a
/// background task.
pub struct FsNamer {
    shared: Arc<Shared>,
    _watcher: notify::RecommendedWatcher,
    task: AbortHandle,
}

impl fmt::Debug for FsNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsNamer")
            .field("root_dir", &self.shared.root)
            .finish_non_exhaustive()
    }
}

impl FsNamer {
    /// A namer serving the files under `root_dir`, which must be an existing
    /// directory.
    ///
    /// Must be called inside a tokio runtime: the watching task is spawned
    /// on it (and host names are resolved on it). Dropping the namer stops
    /// the watching; address sets handed out keep their last value.
    pub fn new(root_dir: impl Into<PathBuf>) -> Result<FsNamer, FsError> {
        let root = root_dir.into();
        match std::fs::metadata(&root) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => return Err(FsError::NotADirectory(root)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FsError::NotFound(root));
            }
            Err(e) => return Err(FsError::Unreadable(root, e)),
        }
        let rt = Handle::try_current().map_err(|_| FsError::NoRuntime)?;
        let wake = Arc::new(Notify::new());
        let mut watcher = notify::recommended_watcher({
            let wake = wake.clone();
            move |res: notify::Result<notify::Event>| on_event(&wake, res)
        })
        .map_err(|e| FsError::Watch(root.clone(), e))?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|e| FsError::Watch(root.clone(), e))?;
        let shared = Arc::new(Shared {
            root,
            rt: rt.clone(),
            never: watch::channel(State::Ok(NameTree::Neg)).0,
            services: Mutex::default(),
        });
        let task = rt.spawn(run(Arc::downgrade(&shared), wake)).abort_handle();
        tracing::info!(root = %shared.root.display(), "io.l5d.fs: watching");
        Ok(FsNamer {
            shared,
            _watcher: watcher,
            task,
        })
    }

    /// The directory served.
    pub fn root_dir(&self) -> &FsPath {
        &self.shared.root
    }
}

impl Drop for FsNamer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Namer for FsNamer {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        // A path that can never name a file needs no entry.
        match path.elems().first() {
            Some(first) if safe_elem(first).is_some() => {}
            // Not `const_activity`: a closed channel makes
            // `Binding::changed` wait forever, even on its other lookups.
            _ => return self.shared.never.subscribe(),
        }
        let key = LookupKey {
            prefix: prefix.clone(),
            path: path.clone(),
        };
        if let Some(e) = self.shared.lock().lookups.get(&key) {
            return e.tx.subscribe();
        }
        // The file system is read without the lock held.
        let root = &self.shared.root;
        let target = find_file(root, path);
        let content = target.map(|n| read_service(root, &path.take(n)));

        let mut services = self.shared.lock();
        let Services {
            lookups,
            lookups_kept,
            files,
        } = &mut *services;
        if let Some(e) = lookups.get(&key) {
            return e.tx.subscribe();
        }
        let state = match (target, content) {
            (Some(n), Some(content)) => {
                let file = path.take(n);
                let addr = file_var(&self.shared, files, &file, content, false);
                bound_leaf(prefix, path, n, addr)
            }
            _ => State::Ok(NameTree::Neg),
        };
        let (tx, rx) = watch::channel(state);
        crate::prune_unheld(lookups, lookups_kept, |_, e| !e.tx.is_closed());
        lookups.insert(key, LookupEntry { tx, target });
        rx
    }

    fn state(&self) -> serde_json::Value {
        let services = self.shared.lock();
        let mut out = serde_json::Map::new();
        for (file, e) in &services.files {
            out.insert(file.show(), addr_json(&e.tx.borrow()));
        }
        for (key, e) in &services.lookups {
            if e.target.is_none() {
                out.entry(key.path.show())
                    .or_insert_with(|| serde_json::json!({ "state": "neg" }));
            }
        }
        serde_json::json!({
            "rootDir": self.shared.root.display().to_string(),
            "services": out,
        })
    }
}

fn addr_json(addr: &Addr) -> serde_json::Value {
    match addr {
        Addr::Pending => serde_json::json!({ "state": "pending" }),
        Addr::Neg => serde_json::json!({ "state": "neg" }),
        Addr::Failed(e) => serde_json::json!({ "state": "failed", "error": &**e }),
        Addr::Bound(eps) => serde_json::json!({
            "state": "bound",
            "addresses": eps.iter().map(|e| e.addr.to_string()).collect::<Vec<_>>(),
            "weights": eps.iter().map(|e| e.weight).collect::<Vec<_>>(),
        }),
    }
}

/// What the watching task and the lookups share.
struct Shared {
    root: PathBuf,
    rt: Handle,
    /// The answer for paths that can never name a file: `Neg`, forever,
    /// from an open channel.
    never: watch::Sender<State<LookupTree>>,
    services: Mutex<Services>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Services> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Services {
    /// One live answer per looked-up path.
    lookups: HashMap<LookupKey, LookupEntry>,
    /// How many lookups the last prune kept.
    lookups_kept: usize,
    /// One live address set per file, keyed by its path under the root.
    files: HashMap<Path, FileEntry>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct LookupKey {
    prefix: Path,
    path: Path,
}

struct LookupEntry {
    tx: watch::Sender<State<LookupTree>>,
    /// How many elements of the path name the file; `None` when `Neg`.
    target: Option<usize>,
}

struct FileEntry {
    tx: watch::Sender<Addr>,
    /// What the file said when last read.
    content: Content,
    /// Bumped on each new content, so a slow resolution of older content
    /// does not overwrite newer content.
    seq: u64,
}

/// A file, as read.
#[derive(Clone, Debug, PartialEq)]
enum Content {
    /// Not there, or not a regular file.
    Missing,
    /// Unreadable or malformed: the message says why.
    Failed(Arc<str>),
    /// The addresses, in file order.
    Lines(Arc<[Line]>),
}

#[derive(Clone, Debug, PartialEq)]
struct Line {
    host: Host,
    port: u16,
    weight: f64,
    /// 1-based, for messages.
    number: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Content {
    fn has_names(&self) -> bool {
        matches!(self, Content::Lines(ls) if ls.iter().any(|l| matches!(l.host, Host::Name(_))))
    }

    /// The address set, when it needs no DNS.
    fn static_addr(&self) -> Option<Addr> {
        match self {
            Content::Missing => Some(Addr::Neg),
            Content::Failed(e) => Some(Addr::Failed(e.clone())),
            Content::Lines(lines) => {
                let mut eps = Endpoints::default();
                for l in lines.iter() {
                    match l.host {
                        Host::Ip(ip) => eps.push(SocketAddr::new(ip, l.port), l.weight),
                        Host::Name(_) => return None,
                    }
                }
                Some(Addr::Bound(eps.list.into()))
            }
        }
    }
}

/// Endpoints without duplicate addresses (the first line wins), as Linkerd
/// keeps a set.
#[derive(Default)]
struct Endpoints {
    list: Vec<Endpoint>,
    seen: HashSet<SocketAddr>,
}

impl Endpoints {
    fn push(&mut self, addr: SocketAddr, weight: f64) {
        if self.seen.insert(addr) {
            self.list.push(Endpoint { addr, weight });
        }
    }
}

/// The element as a file name, if it is safe to use as one.
fn safe_elem(elem: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(elem).ok()?;
    if s.is_empty() || s.starts_with('.') || s.contains('/') || s.contains('\0') {
        return None;
    }
    Some(s)
}

/// The file a (checked) key names under `root`.
fn fs_path(root: &FsPath, file: &Path) -> PathBuf {
    let mut p = root.to_path_buf();
    for e in file.elems() {
        // Keys are made of elements `safe_elem` accepted, so this is exact.
        p.push(&*String::from_utf8_lossy(e));
    }
    p
}

/// How many elements of `path` it takes to reach a regular file: walks
/// directories until a file; `None` for a missing entry, a directory at the
/// end, anything else, or an unsafe element.
fn find_file(root: &FsPath, path: &Path) -> Option<usize> {
    let mut p = root.to_path_buf();
    for (i, elem) in path.elems().iter().enumerate() {
        p.push(safe_elem(elem)?);
        let md = std::fs::metadata(&p).ok()?;
        if md.is_file() {
            return Some(i + 1);
        }
        if !md.is_dir() {
            return None;
        }
    }
    None
}

/// Reads and parses the file `file` names under `root`.
fn read_service(root: &FsPath, file: &Path) -> Content {
    let p = fs_path(root, file);
    // Only regular files: reading a FIFO would block.
    match std::fs::metadata(&p) {
        Ok(md) if md.is_file() => {}
        _ => return Content::Missing,
    }
    match std::fs::read(&p) {
        Ok(bytes) => parse(&String::from_utf8_lossy(&bytes), &p),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
            ) =>
        {
            Content::Missing
        }
        Err(e) => Content::Failed(format!("cannot read {}: {e}", p.display()).into()),
    }
}

/// Parses a service file; `file` is for messages.
fn parse(text: &str, file: &FsPath) -> Content {
    let mut lines = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let body = raw.split_once('#').map_or(raw, |(body, _)| body).trim();
        if body.is_empty() {
            continue;
        }
        match parse_line(body) {
            Some((host, port, weight)) => lines.push(Line {
                host,
                port,
                weight,
                number: i + 1,
            }),
            None => {
                return Content::Failed(
                    format!(
                        "malformed address in {} line {}: {:?}",
                        file.display(),
                        i + 1,
                        raw.trim()
                    )
                    .into(),
                );
            }
        }
    }
    Content::Lines(lines.into())
}

/// `host port` or `host port * weight`.
fn parse_line(body: &str) -> Option<(Host, u16, f64)> {
    let tokens: Vec<&str> = body.split_whitespace().collect();
    let (host, port, weight) = match tokens.as_slice() {
        [host, port] => (*host, *port, 1.0),
        [host, port, "*", weight] => (*host, *port, parse_weight(weight)?),
        _ => return None,
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    Some((parse_host(host)?, port, weight))
}

fn parse_weight(w: &str) -> Option<f64> {
    w.parse::<f64>().ok().filter(|w| w.is_finite() && *w >= 0.0)
}

/// An IP literal (IPv6 optionally in brackets) or something that looks like
/// a host name.
fn parse_host(h: &str) -> Option<Host> {
    if let Some(inner) = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(|ip| Host::Ip(ip.into()));
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(Host::Ip(ip));
    }
    let name_like = h.len() <= 253
        && !h.starts_with(['.', '-'])
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    name_like.then(|| Host::Name(h.to_owned()))
}

/// Resolves every line (all addresses of each host name).
async fn resolve_lines(file: &FsPath, lines: &[Line]) -> Result<Vec<Endpoint>, String> {
    let mut eps = Endpoints::default();
    for l in lines {
        let name = match &l.host {
            Host::Ip(ip) => {
                eps.push(SocketAddr::new(*ip, l.port), l.weight);
                continue;
            }
            Host::Name(name) => name,
        };
        let fail = |why: String| {
            format!(
                "cannot resolve {name:?} in {} line {}: {why}",
                file.display(),
                l.number
            )
        };
        let lookup = tokio::net::lookup_host((name.as_str(), l.port));
        let mut addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(_) => return Err(fail("timed out".into())),
        };
        addrs.sort();
        if addrs.is_empty() {
            return Err(fail("no addresses".into()));
        }
        for a in addrs {
            eps.push(a, l.weight);
        }
    }
    Ok(eps.list)
}

/// The bound leaf for `path` whose first `n` elements name a file.
fn bound_leaf(prefix: &Path, path: &Path, n: usize, addr: AddrVar) -> State<LookupTree> {
    State::Ok(NameTree::Leaf(Name::Bound(Bound {
        id: prefix.concat(&path.take(n)),
        residual: path.drop(n),
        addr,
        weight: None,
    })))
}

/// The address set of `file`, creating its entry from `content` when there
/// is none. `changed` says whether the file appeared (logged) rather than
/// being looked up for the first time.
fn file_var(
    shared: &Arc<Shared>,
    files: &mut HashMap<Path, FileEntry>,
    file: &Path,
    content: Content,
    changed: bool,
) -> AddrVar {
    if let Some(e) = files.get(file) {
        return e.tx.subscribe();
    }
    let initial = content.static_addr().unwrap_or(Addr::Pending);
    if changed {
        tracing::info!(service = %file, addr = %initial, "io.l5d.fs: service appeared");
    } else {
        tracing::debug!(service = %file, addr = %initial, "io.l5d.fs: service read");
    }
    let (tx, rx) = watch::channel(initial);
    let mut entry = FileEntry {
        tx,
        content: content.clone(),
        seq: 0,
    };
    if let Content::Lines(lines) = content
        && entry.content.has_names()
    {
        spawn_resolve(shared, file, &mut entry, lines, false);
    }
    files.insert(file.clone(), entry);
    rx
}

/// Resolves `lines` in the background for `entry`; an error keeps the
/// current bound set when `keep_on_error` (a periodic re-resolution).
fn spawn_resolve(
    shared: &Arc<Shared>,
    file: &Path,
    entry: &mut FileEntry,
    lines: Arc<[Line]>,
    keep_on_error: bool,
) {
    entry.seq += 1;
    let seq = entry.seq;
    let weak = Arc::downgrade(shared);
    let file = file.clone();
    let path = fs_path(&shared.root, &file);
    shared.rt.spawn(async move {
        let result = resolve_lines(&path, &lines).await;
        let Some(shared) = weak.upgrade() else { return };
        let services = shared.lock();
        let Some(entry) = services.files.get(&file) else {
            return;
        };
        if entry.seq != seq {
            return;
        }
        let addr = match result {
            Ok(eps) => Addr::Bound(eps.into()),
            Err(e) => {
                if keep_on_error && matches!(*entry.tx.borrow(), Addr::Bound(_)) {
                    tracing::warn!(service = %file, error = %e, "io.l5d.fs: keeping the last addresses");
                    return;
                }
                Addr::Failed(e.into())
            }
        };
        set_addr(&file, &entry.tx, addr);
    });
}

/// Publishes `addr` if it differs from the current value, logging the change.
fn set_addr(file: &Path, tx: &watch::Sender<Addr>, addr: Addr) {
    let changed = tx.send_if_modified(|cur| {
        if *cur == addr {
            false
        } else {
            *cur = addr.clone();
            true
        }
    });
    if changed {
        tracing::info!(service = %file, addr = %addr, "io.l5d.fs: service changed");
    }
}

/// Applies a fresh read of an entry's file. `refresh` (a periodic scan)
/// re-resolves host names even when the file is unchanged.
fn apply_content(
    shared: &Arc<Shared>,
    file: &Path,
    entry: &mut FileEntry,
    content: Content,
    refresh: bool,
) {
    let changed = entry.content != content;
    let re_resolve = refresh && content.has_names();
    if !changed && !re_resolve {
        return;
    }
    entry.content = content.clone();
    match (content.static_addr(), content) {
        (Some(addr), _) => {
            // Cancels any resolution of older content.
            entry.seq += 1;
            set_addr(file, &entry.tx, addr);
        }
        (None, Content::Lines(lines)) => spawn_resolve(shared, file, entry, lines, !changed),
        (None, _) => {}
    }
}

/// Whether a watch event may change what a file says.
fn matters(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        // Opens and reads, including ours.
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn on_event(wake: &Notify, res: notify::Result<notify::Event>) {
    match res {
        Ok(event) => {
            if matters(&event.kind) {
                wake.notify_one();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "io.l5d.fs: watch error; re-reading");
            wake.notify_one();
        }
    }
}

/// The watching task: a scan shortly after events, and every
/// [`RESCAN_INTERVAL`].
async fn run(shared: Weak<Shared>, wake: Arc<Notify>) {
    let mut tick = tokio::time::interval(RESCAN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let refresh = tokio::select! {
            () = wake.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                false
            }
            _ = tick.tick() => true,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        scan(&shared, refresh).await;
    }
}

/// Drops unwatched entries, re-reads what is watched and publishes changes.
async fn scan(shared: &Arc<Shared>, refresh: bool) {
    let (keys, mut wanted) = {
        let mut services = shared.lock();
        // Lookups first: dropping one releases the address set it held.
        services.lookups.retain(|_, e| !e.tx.is_closed());
        services.files.retain(|_, e| !e.tx.is_closed());
        let keys: Vec<LookupKey> = services.lookups.keys().cloned().collect();
        let files: HashSet<Path> = services.files.keys().cloned().collect();
        (keys, files)
    };
    if keys.is_empty() && wanted.is_empty() {
        return;
    }
    let root = shared.root.clone();
    let read = tokio::task::spawn_blocking(move || {
        let targets: Vec<Option<usize>> = keys.iter().map(|k| find_file(&root, &k.path)).collect();
        for (k, t) in keys.iter().zip(&targets) {
            if let Some(n) = t {
                wanted.insert(k.path.take(*n));
            }
        }
        let contents: HashMap<Path, Content> = wanted
            .into_iter()
            .map(|f| {
                let c = read_service(&root, &f);
                (f, c)
            })
            .collect();
        (keys, targets, contents)
    })
    .await;
    let (keys, targets, mut contents) = match read {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(error = %e, "io.l5d.fs: scan failed");
            return;
        }
    };

    let mut services = shared.lock();
    let Services { lookups, files, .. } = &mut *services;
    for (file, entry) in files.iter_mut() {
        if let Some(content) = contents.get(file) {
            apply_content(shared, file, entry, content.clone(), refresh);
        }
    }
    for (key, target) in keys.into_iter().zip(targets) {
        let Some(entry) = lookups.get_mut(&key) else {
            continue;
        };
        if entry.target == target {
            continue;
        }
        let state = match target {
            None => State::Ok(NameTree::Neg),
            Some(n) => {
                let file = key.path.take(n);
                let content = contents
                    .remove(&file)
                    .unwrap_or_else(|| read_service(&shared.root, &file));
                let addr = file_var(shared, files, &file, content, true);
                bound_leaf(&key.prefix, &key.path, n, addr)
            }
        };
        tracing::debug!(
            prefix = %key.prefix,
            path = %key.path,
            bound = target.is_some(),
            "io.l5d.fs: lookup changed"
        );
        entry.target = target;
        entry.tx.send_replace(state);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    use std::time::Duration;

    use strait_dtab::Dtab;
    use tempfile::TempDir;

    use crate::Interpreter;
    use crate::inet::InetResolver;

    /// How long a change may take to show before a test fails (generous:
    /// the requirement is 100 ms, but CI machines stall).
    const WAIT: Duration = Duration::from_secs(5);

    fn prefix() -> Path {
        Path::read("/#/io.l5d.fs").unwrap()
    }

    fn path(s: &str) -> Path {
        Path::read(s).unwrap()
    }

    fn setup() -> (TempDir, FsNamer) {
        let dir = tempfile::tempdir().unwrap();
        let namer = FsNamer::new(dir.path()).unwrap();
        (dir, namer)
    }

    use crate::testing::{addrs, bound, is_bound, is_neg};

    async fn wait_state(
        act: &mut Activity,
        what: &str,
        f: impl FnMut(&State<LookupTree>) -> bool,
    ) -> State<LookupTree> {
        crate::testing::wait_state(act, WAIT, what, f).await
    }

    async fn wait_addr(var: &mut AddrVar, what: &str, f: impl FnMut(&Addr) -> bool) -> Addr {
        crate::testing::wait_addr(var, WAIT, what, f).await
    }

    fn lines_of(text: &str) -> Vec<(Host, u16, f64)> {
        match parse(text, FsPath::new("/f")) {
            Content::Lines(ls) => ls
                .iter()
                .map(|l| (l.host.clone(), l.port, l.weight))
                .collect(),
            other => panic!("expected addresses from {text:?}, got {other:?}"),
        }
    }

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    #[test]
    fn parses_every_line_form_with_weights_and_comments() {
        let text = "# a comment line\n\
                    \n\
                    127.0.0.1 8080\n\
                    \t10.0.0.2   8081  *  2.5   # weighted, trailing comment\n\
                    ::1 9000\n\
                    [::1] 9001 * 0\n\
                    backend.example 80\r\n\
                    127.1 8888\n\
                       \n";
        assert_eq!(
            lines_of(text),
            vec![
                (ip("127.0.0.1"), 8080, 1.0),
                (ip("10.0.0.2"), 8081, 2.5),
                (ip("::1"), 9000, 1.0),
                (ip("::1"), 9001, 0.0),
                (Host::Name("backend.example".into()), 80, 1.0),
                (Host::Name("127.1".into()), 8888, 1.0),
            ],
            "`host port [* weight]` per line, '#' comments and blank lines skipped, weight 1 by default"
        );
        assert_eq!(lines_of(""), vec![], "an empty file has no addresses");
        assert_eq!(
            lines_of("# only\n#comments\n"),
            vec![],
            "a comment-only file has no addresses"
        );
    }

    #[test]
    fn malformed_lines_fail_the_whole_file() {
        for bad in [
            "127.0.0.1",
            "127.0.0.1 0",
            "127.0.0.1 65536",
            "127.0.0.1 notaport",
            "127.0.0.1 80 81",
            "127.0.0.1 80 *",
            "127.0.0.1 80 * x",
            "127.0.0.1 80 * -1",
            "127.0.0.1 80 * NaN",
            "127.0.0.1 80 * inf",
            "127.0.0.1:80 80",
            "a/b 80",
            "[10.0.0.1] 80",
        ] {
            let text = format!("10.0.0.1 80\n{bad}\n10.0.0.2 80\n");
            match parse(&text, FsPath::new("/dir/hello")) {
                Content::Failed(e) => assert_eq!(
                    &*e,
                    format!("malformed address in /dir/hello line 2: {bad:?}"),
                    "the error names the file and line and quotes the line"
                ),
                other => panic!("{bad:?} must fail the whole file, got {other:?}"),
            }
        }
        assert_eq!(
            lines_of("10.0.0.1 65535"),
            vec![(ip("10.0.0.1"), 65535, 1.0)],
            "65535 is a port"
        );
    }

    #[tokio::test]
    async fn a_file_is_a_bound_service_with_weights() {
        let (dir, namer) = setup();
        std::fs::write(
            dir.path().join("hello"),
            "127.0.0.1 8080\n127.0.0.2 8081 * 3 # canary\n127.0.0.1 8080 * 9\n",
        )
        .unwrap();
        let act = namer.lookup(&prefix(), &path("/hello"));
        let state = act.borrow().clone();
        let b = bound(&state);
        let addr = b.addr.borrow().clone();
        let Addr::Bound(eps) = addr else {
            panic!("a well-formed file is bound, got {addr}")
        };
        assert_eq!(
            &*eps,
            &[
                Endpoint {
                    addr: "127.0.0.1:8080".parse().unwrap(),
                    weight: 1.0
                },
                Endpoint {
                    addr: "127.0.0.2:8081".parse().unwrap(),
                    weight: 3.0
                },
            ],
            "one endpoint per address (the first line wins), with its weight"
        );
    }

    #[tokio::test]
    async fn a_malformed_line_fails_the_service_quoting_the_line() {
        let (dir, namer) = setup();
        let file = dir.path().join("hello");
        std::fs::write(&file, "127.0.0.1 8080\n127.0.0.1 notaport\n").unwrap();
        let act = namer.lookup(&prefix(), &path("/hello"));
        let state = act.borrow().clone();
        let addr = bound(&state).addr.borrow().clone();
        assert_eq!(
            addr,
            Addr::Failed(
                format!(
                    "malformed address in {} line 2: \"127.0.0.1 notaport\"",
                    file.display()
                )
                .into()
            ),
            "one bad line fails the whole service, naming the file and quoting the line"
        );
    }

    #[tokio::test]
    async fn an_empty_file_is_an_empty_bound_set() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        std::fs::write(dir.path().join("comments"), "# nothing yet\n\n").unwrap();
        for name in ["/empty", "/comments"] {
            let act = namer.lookup(&prefix(), &path(name));
            let state = act.borrow().clone();
            assert_eq!(
                *bound(&state).addr.borrow(),
                Addr::Bound(Arc::from([])),
                "an empty or comment-only file ({name}) is bound to no addresses"
            );
        }
    }

    #[tokio::test]
    async fn host_names_are_resolved_when_read() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "localhost 8080 * 2\n").unwrap();
        let act = namer.lookup(&prefix(), &path("/hello"));
        let state = act.borrow().clone();
        let mut var = bound(&state).addr.clone();
        let addr = wait_addr(&mut var, "localhost to resolve", |a| {
            !matches!(a, Addr::Pending)
        })
        .await;
        let Addr::Bound(eps) = addr else {
            panic!("localhost must resolve, got {addr}")
        };
        assert!(
            !eps.is_empty()
                && eps
                    .iter()
                    .all(|e| e.addr.ip().is_loopback() && e.addr.port() == 8080 && e.weight == 2.0),
            "a host name stands for all its addresses, each with the line's weight: {eps:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_file_is_neg_until_created() {
        let (dir, namer) = setup();
        let mut act = namer.lookup(&prefix(), &path("/hello"));
        assert!(is_neg(&act.borrow()), "a missing file is Neg");
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let state = wait_state(&mut act, "the new file to bind", is_bound).await;
        let mut var = bound(&state).addr.clone();
        let addr = wait_addr(
            &mut var,
            "the written addresses",
            |a| matches!(a, Addr::Bound(e) if !e.is_empty()),
        )
        .await;
        assert_eq!(
            addrs(&addr),
            ["127.0.0.1:8080"],
            "a created file binds the lookup that was Neg"
        );
    }

    #[tokio::test]
    async fn an_edit_changes_the_addresses() {
        let (dir, namer) = setup();
        let file = dir.path().join("hello");
        std::fs::write(&file, "127.0.0.1 8080\n").unwrap();
        let act = namer.lookup(&prefix(), &path("/hello"));
        let state = act.borrow().clone();
        let mut var = bound(&state).addr.clone();
        assert_eq!(addrs(&var.borrow_and_update()), ["127.0.0.1:8080"]);
        std::fs::write(&file, "127.0.0.1 8080\n127.0.0.1 8081\n").unwrap();
        let addr = wait_addr(
            &mut var,
            "the edit",
            |a| matches!(a, Addr::Bound(e) if e.len() == 2),
        )
        .await;
        assert_eq!(
            addrs(&addr),
            ["127.0.0.1:8080", "127.0.0.1:8081"],
            "an edit in place changes the address set"
        );
        assert!(
            !act.has_changed().unwrap(),
            "an edit changes the address set, not the lookup"
        );
    }

    #[tokio::test]
    async fn renaming_a_file_into_place_applies() {
        let (dir, namer) = setup();
        let file = dir.path().join("hello");
        let tmp = dir.path().join(".hello.swp");
        let mut act = namer.lookup(&prefix(), &path("/hello"));
        assert!(is_neg(&act.borrow()), "a missing file is Neg");

        // `mv` of a new file into place.
        std::fs::write(&tmp, "127.0.0.1 8080\n").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let state = wait_state(&mut act, "the moved-in file", is_bound).await;
        let mut var = bound(&state).addr.clone();
        assert_eq!(
            addrs(&var.borrow_and_update()),
            ["127.0.0.1:8080"],
            "a file moved into place binds the service"
        );

        // An editor's save (vim, sed -i): write a temporary file, rename it
        // over the old one.
        std::fs::write(&tmp, "127.0.0.1 9090\n").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let addr = wait_addr(
            &mut var,
            "the renamed-over file",
            |a| matches!(a, Addr::Bound(e) if e.first().is_some_and(|e| e.addr.port() == 9090)),
        )
        .await;
        assert_eq!(
            addrs(&addr),
            ["127.0.0.1:9090"],
            "a file renamed over the old one replaces its addresses"
        );
    }

    #[tokio::test]
    async fn deleting_the_file_goes_back_to_neg() {
        let (dir, namer) = setup();
        let file = dir.path().join("hello");
        std::fs::write(&file, "127.0.0.1 8080\n").unwrap();
        let mut act = namer.lookup(&prefix(), &path("/hello"));
        let state = act.borrow_and_update().clone();
        let mut var = bound(&state).addr.clone();
        std::fs::remove_file(&file).unwrap();
        wait_state(&mut act, "the deletion", is_neg).await;
        assert_eq!(
            *var.borrow_and_update(),
            Addr::Neg,
            "a deleted file's address set is Neg for whoever still holds it"
        );
        std::fs::write(&file, "127.0.0.1 8081\n").unwrap();
        let state = wait_state(&mut act, "the re-creation", is_bound).await;
        assert_eq!(
            addrs(&bound(&state).addr.borrow()),
            ["127.0.0.1:8081"],
            "a re-created file binds again"
        );
    }

    #[tokio::test]
    async fn id_and_residual_follow_the_consumed_elements() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let act = namer.lookup(&prefix(), &path("/hello/x/y"));
        let state = act.borrow().clone();
        let b = bound(&state);
        assert_eq!(
            b.id,
            path("/#/io.l5d.fs/hello"),
            "the id is prefix ++ the file's elements"
        );
        assert_eq!(
            b.residual,
            path("/x/y"),
            "the residual is what follows the file"
        );
        assert_eq!(b.weight, None, "the namer sets no branch weight");
    }

    #[tokio::test]
    async fn directories_nest() {
        let (dir, namer) = setup();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/b"), "127.0.0.1 8080\n").unwrap();
        let act = namer.lookup(&prefix(), &path("/a/b/rest"));
        let state = act.borrow().clone();
        let b = bound(&state);
        assert_eq!(
            b.id,
            path("/#/io.l5d.fs/a/b"),
            "a directory element descends"
        );
        assert_eq!(b.residual, path("/rest"));
        assert!(
            is_neg(&namer.lookup(&prefix(), &path("/a")).borrow()),
            "a path naming only a directory is Neg"
        );
        assert!(
            is_neg(&namer.lookup(&prefix(), &path("/a/c")).borrow()),
            "a missing file in a directory is Neg"
        );
        assert!(
            is_neg(&namer.lookup(&prefix(), &Path::empty()).borrow()),
            "the empty path is Neg"
        );

        // A directory created later is watched too.
        let mut act = namer.lookup(&prefix(), &path("/x/y/z"));
        assert!(is_neg(&act.borrow()));
        std::fs::create_dir_all(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/y"), "127.0.0.1 8082\n").unwrap();
        let state = wait_state(&mut act, "the file in a new directory", is_bound).await;
        assert_eq!(
            bound(&state).id,
            path("/#/io.l5d.fs/x/y"),
            "a file in a new directory binds"
        );
    }

    #[tokio::test]
    async fn unsafe_elements_are_neg() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(outer.path().join("secret"), "127.0.0.1 22\n").unwrap();
        std::fs::write(root.join(".hidden"), "127.0.0.1 8080\n").unwrap();
        std::fs::write(root.join("hello~"), "127.0.0.1 8080\n").unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        let namer = FsNamer::new(&root).unwrap();

        let cases: Vec<(&str, Path)> = vec![
            ("..", Path::from_elems(["..", "secret"]).unwrap()),
            (".", Path::from_elems([".", "hello~"]).unwrap()),
            ("hidden", Path::from_elems([".hidden"]).unwrap()),
            (
                "nested ..",
                Path::from_elems(["d", "..", "..", "secret"]).unwrap(),
            ),
            ("slash", Path::from_elems(["d/../../secret"]).unwrap()),
            ("NUL", Path::from_elems([&b"hello~\0"[..]]).unwrap()),
            ("non-UTF-8", Path::from_elems([&b"\xff"[..]]).unwrap()),
        ];
        for (what, p) in cases {
            assert!(
                is_neg(&namer.lookup(&prefix(), &p).borrow()),
                "a {what} element is Neg and never leaves rootDir ({p})"
            );
        }
        assert!(
            is_bound(
                &namer
                    .lookup(&prefix(), &Path::from_elems(["hello~"]).unwrap())
                    .borrow()
            ),
            "an ordinary file name is bound"
        );
        let act = namer.lookup(&prefix(), &Path::from_elems(["hello~", ".."]).unwrap());
        assert_eq!(
            bound(&act.borrow()).residual,
            Path::from_elems([".."]).unwrap(),
            "elements after the file are residual, never file names"
        );
    }

    #[tokio::test]
    async fn lookups_share_channels() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let a = namer.lookup(&prefix(), &path("/hello/x"));
        let b = namer.lookup(&prefix(), &path("/hello/x"));
        assert!(a.same_channel(&b), "one live answer per looked-up path");
        let c = namer.lookup(&prefix(), &path("/hello/y"));
        let (a, c) = (a.borrow().clone(), c.borrow().clone());
        assert!(
            bound(&a).addr.same_channel(&bound(&c).addr),
            "one address set per file, whatever the residual"
        );
    }

    #[tokio::test]
    async fn unwatched_entries_are_dropped_on_scan() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let kept = namer.lookup(&prefix(), &path("/kept"));
        drop(namer.lookup(&prefix(), &path("/hello")));
        drop(namer.lookup(&prefix(), &path("/gone")));
        scan(&namer.shared, false).await;
        let services = namer.shared.lock();
        let lookups: Vec<String> = services.lookups.keys().map(|k| k.path.show()).collect();
        assert_eq!(lookups, ["/kept"], "lookups nobody watches are dropped");
        assert!(
            services.files.is_empty(),
            "address sets nobody watches are dropped"
        );
        drop(kept);
    }

    #[tokio::test]
    async fn one_off_lookups_do_not_pile_up_between_scans() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let hello = namer.lookup(&prefix(), &path("/hello"));
        for i in 0..5_000 {
            drop(namer.lookup(&prefix(), &path(&format!("/bogus-{i}"))));
        }
        let services = namer.shared.lock();
        assert!(
            services.lookups.len() <= 2 * crate::PRUNE_FLOOR,
            "lookups nobody holds are dropped as new ones come: {}",
            services.lookups.len()
        );
        assert!(services.lookups.keys().any(|k| k.path.show() == "/hello"));
        drop(services);
        assert!(matches!(*hello.borrow(), State::Ok(NameTree::Leaf(_))));
    }

    #[tokio::test]
    async fn state_reports_each_service() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080 * 2\n").unwrap();
        std::fs::write(dir.path().join("bad"), "nope\n").unwrap();
        let _hello = namer.lookup(&prefix(), &path("/hello"));
        let _bad = namer.lookup(&prefix(), &path("/bad"));
        let _missing = namer.lookup(&prefix(), &path("/missing"));
        let state = namer.state();
        assert_eq!(
            state["rootDir"],
            serde_json::json!(dir.path().display().to_string())
        );
        assert_eq!(
            state["services"]["/hello"],
            serde_json::json!({"state": "bound", "addresses": ["127.0.0.1:8080"], "weights": [2.0]}),
            "a bound service lists its addresses and weights"
        );
        assert_eq!(
            state["services"]["/missing"],
            serde_json::json!({"state": "neg"})
        );
        assert_eq!(state["services"]["/bad"]["state"], "failed");
        assert!(
            state["services"]["/bad"]["error"]
                .as_str()
                .unwrap()
                .contains("\"nope\""),
            "a failed service carries its error: {state}"
        );
    }

    #[tokio::test]
    async fn root_dir_must_be_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = FsNamer::new(&missing).unwrap_err().to_string();
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("does not exist"),
            "a missing rootDir is an error naming it: {err}"
        );
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = FsNamer::new(&file).unwrap_err().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains("not a directory"),
            "a rootDir that is a file is an error naming it: {err}"
        );
    }

    #[test]
    fn needs_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            matches!(FsNamer::new(dir.path()), Err(FsError::NoRuntime)),
            "outside a tokio runtime creation fails instead of panicking"
        );
    }

    fn interpreter(namer: FsNamer) -> Interpreter {
        Interpreter::new(
            vec![(prefix(), Arc::new(namer) as Arc<dyn Namer>)],
            InetResolver::default(),
        )
    }

    #[tokio::test]
    async fn the_interpreter_binds_a_file() {
        let (dir, namer) = setup();
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let interp = interpreter(namer);
        let dtab = Dtab::read("/svc=>/#/io.l5d.fs").unwrap();
        let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
        match &binding.state {
            State::Ok(NameTree::Leaf(b)) => {
                assert_eq!(b.id, path("/#/io.l5d.fs/hello"));
                assert_eq!(b.residual, Path::empty());
                assert_eq!(addrs(&b.addr.borrow()), ["127.0.0.1:8080"]);
            }
            other => panic!("/svc/hello must bind to the file, got {other:?}"),
        }
        assert!(!binding.is_stale(), "a fresh binding is not stale");
    }

    #[tokio::test]
    async fn a_binding_goes_stale_when_its_missing_service_appears() {
        let (dir, namer) = setup();
        let interp = interpreter(namer);
        let dtab = Dtab::read("/svc=>/#/io.l5d.fs").unwrap();
        let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
        assert!(
            matches!(binding.state, State::Ok(NameTree::Neg)),
            "a missing service binds to Neg, got {:?}",
            binding.state
        );
        assert!(!binding.is_stale());
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let mut waiter = binding.clone();
        tokio::time::timeout(WAIT, waiter.changed())
            .await
            .expect("the lookup must change when the file appears");
        assert!(
            binding.is_stale(),
            "a binding that used a missing service is stale once the file exists"
        );
        let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
        assert!(
            matches!(&binding.state, State::Ok(NameTree::Leaf(b)) if b.id == path("/#/io.l5d.fs/hello")),
            "binding again finds the file, got {:?}",
            binding.state
        );
    }
    #[tokio::test]
    async fn a_binding_that_also_tried_an_unsafe_name_still_wakes() {
        let (dir, namer) = setup();
        let interp = interpreter(namer);
        // The first alternative is Neg for good; the second may change.
        let dtab = Dtab::read("/svc=>/#/io.l5d.fs/.hidden | /#/io.l5d.fs").unwrap();
        let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
        assert!(matches!(binding.state, State::Ok(NameTree::Neg)));
        std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
        let mut waiter = binding.clone();
        tokio::time::timeout(WAIT, waiter.changed()).await.expect(
            "Binding::changed must wake for the live lookup even though an unsafe \
             name's lookup never changes",
        );
        assert!(binding.is_stale());
    }
}
