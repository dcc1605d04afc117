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
//! line; an empty file is an empty bound set; a missing file is `Neg`. A
//! file that had addresses and reads empty is taken as empty only if it is
//! still empty [`SETTLE`] later: a file rewritten in place (a shell's `>`,
//! most tools' plain write) is empty between its truncation and the write,
//! and a writer stalled there would otherwise leave the service with no
//! endpoints for a moment.
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

/// How long a file that had addresses and reads empty must stay empty to
/// be taken as empty.
pub const SETTLE: Duration = Duration::from_millis(250);

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

impl Content {
    /// Read, and no addresses in it (empty, or comments only).
    fn is_empty(&self) -> bool {
        matches!(self, Content::Lines(l) if l.is_empty())
    }
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
    // A file that had addresses and now reads empty may be half-written
    // (truncated, not yet written): it counts as empty only if it still is
    // a moment later.
    let emptied: Vec<Path> = {
        let services = shared.lock();
        contents
            .iter()
            .filter(|(file, c)| {
                c.is_empty()
                    && services
                        .files
                        .get(*file)
                        .is_some_and(|e| matches!(&e.content, Content::Lines(l) if !l.is_empty()))
            })
            .map(|(file, _)| file.clone())
            .collect()
    };
    if !emptied.is_empty() {
        tokio::time::sleep(SETTLE).await;
        let root = shared.root.clone();
        let again = tokio::task::spawn_blocking(move || {
            emptied
                .into_iter()
                .map(|f| {
                    let c = read_service(&root, &f);
                    (f, c)
                })
                .collect::<Vec<_>>()
        })
        .await;
        match again {
            Ok(again) => contents.extend(again),
            Err(e) => {
                tracing::warn!(error = %e, "io.l5d.fs: scan failed");
                return;
            }
        }
    }

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
#[path = "fs_tests.rs"]
mod tests;
