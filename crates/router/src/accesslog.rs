//! `httpAccessLog` / `h2AccessLog`: one line per request.
//!
//! The default format is Linkerd 1's, exactly (`AccessLogger.scala`):
//!
//! * http: `host remote - - [dd/MM/yyyy:HH:mm:ss UTC] "METHOD uri HTTP/1.1" status bytes "referer" "user-agent"`
//! * h2: `authority remote - - [dd/MM/yyyy:HH:mm:ss +0000] "METHOD path HTTP/2" status - "referer" "user-agent"`
//!
//! Strait's own `httpAccessLogFormat: json` (`h2AccessLogFormat`) writes
//! one JSON object per line instead, with what Linkerd's line lacks: the
//! duration, the logical and concrete names, the endpoint that answered
//! and the trace id ([`Format::Json`]).
//!
//! Linkerd logs only requests that reached a client; Strait also logs the
//! ones it answered itself (unidentified, unroutable, refused by a check,
//! timed out, overloaded), with the status it gave.
//!
//! The request path only moves cheap values (reference-counted header
//! values, the URI, the trace id, two instants) into a bounded channel;
//! a writer thread formats and writes the lines, so a slow disk never
//! blocks a request. When the channel is full, lines are dropped and
//! counted (`rt/<router>/access_log/dropped`).
//!
//! The writer owns the file: it rolls it by Linkerd's roll policy
//! ([`RollPolicy`], with `RotateCount` pruning) and reopens it when asked
//! ([`reopen_all`], on SIGHUP and SIGUSR1), so that a file moved away by
//! logrotate is left alone and a new one created. One writer serves a path
//! however many routers (or reloads) log to it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderValue, REFERER, USER_AGENT};
use http::{Method, Uri, Version};
use tokio::sync::mpsc;

use crate::stats::Counter;
use crate::trace::TraceId;

/// How many lines may wait for the writer.
const QUEUE: usize = 8192;

/// How lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Linkerd 1's line (Apache's combined log format, Linkerd's dates).
    #[default]
    Linkerd,
    /// Strait's: one JSON object per line.
    Json,
}

impl Format {
    /// `linkerd` or `json`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "linkerd" => Some(Format::Linkerd),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// As written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Format::Linkerd => "linkerd",
            Format::Json => "json",
        }
    }
}

/// When the file is rolled (`httpAccessLogRollPolicy`, TwitterServer's
/// `Policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RollPolicy {
    /// Never (the default).
    #[default]
    Never,
    /// At the top of each hour (UTC).
    Hourly,
    /// At midnight (UTC).
    Daily,
    /// At midnight (UTC) before this day of the week: 1 = Sunday … 7.
    Weekly(u8),
    /// Never rolled; reopened on SIGHUP (for logrotate). Strait reopens
    /// every access log on SIGHUP and SIGUSR1 whatever its policy.
    SigHup,
    /// When the next line would take the file over this many bytes.
    MaxSize(u64),
}

impl RollPolicy {
    /// Parses a policy as `Policy.parse` does (case-insensitive): `never`,
    /// `hourly`, `daily`, `weekly(n)` (n from 1 = Sunday to 7), `sighup`,
    /// or a size `<n>.<unit>` (units `byte`, `kilobyte`, `megabyte`,
    /// `gigabyte`, `terabyte`, `petabyte`, `exabyte`, each with or without
    /// a final `s`, powers of 1024).
    ///
    /// Linkerd's own message on anything else: `Invalid log roll policy:
    /// <s>`. Unlike Linkerd, a weekday outside 1..7 (which hangs Linkerd)
    /// and a size below one byte (which rolls before every line) are
    /// refused too.
    pub fn parse(s: &str) -> Result<RollPolicy, String> {
        let invalid = || format!("Invalid log roll policy: {s}");
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "never" => return Ok(RollPolicy::Never),
            "hourly" => return Ok(RollPolicy::Hourly),
            "daily" => return Ok(RollPolicy::Daily),
            "sighup" => return Ok(RollPolicy::SigHup),
            _ => {}
        }
        if let Some(day) = lower
            .strip_prefix("weekly(")
            .and_then(|r| r.strip_suffix(')'))
        {
            if day.is_empty() || !day.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            return match day.parse::<u8>() {
                Ok(d @ 1..=7) => Ok(RollPolicy::Weekly(d)),
                _ => Err(format!(
                    "{}: the day of the week is 1 (Sunday) to 7 (Saturday)",
                    invalid()
                )),
            };
        }
        // StorageUnit.parse: exactly one dot, a Long before it.
        let mut parts = lower.split('.');
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        // Java's Long.parseLong: an optional sign, decimal digits.
        let Ok(n) = n.parse::<i64>() else {
            return Err(invalid());
        };
        let unit = unit.strip_suffix('s').unwrap_or(unit);
        let shift = match unit {
            "byte" => 0,
            "kilobyte" => 10,
            "megabyte" => 20,
            "gigabyte" => 30,
            "terabyte" => 40,
            "petabyte" => 50,
            "exabyte" => 60,
            _ => return Err(invalid()),
        };
        match u64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
        {
            Some(bytes) if bytes > 0 => Ok(RollPolicy::MaxSize(bytes)),
            Some(_) => Err(format!("{}: the size must be above zero", invalid())),
            None if n < 0 => Err(format!("{}: the size must be above zero", invalid())),
            None => Err(format!("{}: too large", invalid())),
        }
    }
}

impl std::fmt::Display for RollPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RollPolicy::Never => f.write_str("never"),
            RollPolicy::Hourly => f.write_str("hourly"),
            RollPolicy::Daily => f.write_str("daily"),
            RollPolicy::Weekly(d) => write!(f, "weekly({d})"),
            RollPolicy::SigHup => f.write_str("sighup"),
            RollPolicy::MaxSize(b) => write!(f, "{b}.bytes"),
        }
    }
}

/// How the file is kept: Linkerd's `…RollPolicy`, `…Append` and
/// `…RotateCount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// When to roll.
    pub roll: RollPolicy,
    /// Whether an existing file is appended to when first opened (else
    /// truncated). A reopen on a signal always appends.
    pub append: bool,
    /// How many rolled files to keep; negative keeps all.
    pub rotate_count: i64,
}

impl Default for FileOptions {
    fn default() -> FileOptions {
        FileOptions {
            roll: RollPolicy::Never,
            append: true,
            rotate_count: -1,
        }
    }
}

/// What a router's log handle writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineOptions {
    /// Linkerd's line or JSON.
    pub format: Format,
    /// Linkerd's h2 line (`:authority`, `HTTP/2`, a numeric zone, no
    /// byte count) rather than its http line.
    pub h2: bool,
}

/// A handle to the access log writer of one path.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<Counter>,
    line: LineOptions,
    _shared: Arc<Shared>,
}

/// What goes to the writer.
#[derive(Debug)]
enum Msg {
    /// A line to format and write.
    Line(Box<Record>),
    /// Look at the flags (reopen, new options).
    Wake,
}

/// The writer's state others can touch.
#[derive(Debug)]
struct Shared {
    /// Set by [`reopen_all`]: reopen before the next line.
    reopen: AtomicBool,
    /// The file options, set again when a reload opens the same path.
    options: Mutex<FileOptions>,
}

/// A writer of one path, as the registry knows it (weakly: the writer ends
/// when the last router logging to it is dropped).
struct Registered {
    tx: mpsc::WeakSender<Msg>,
    shared: Weak<Shared>,
}

/// The writers by path.
static WRITERS: Mutex<Option<HashMap<PathBuf, Registered>>> = Mutex::new(None);

/// Makes every access log reopen its path before its next line (and now,
/// if it is idle): a file moved away keeps what was written to it and a
/// new one is created. Returns how many logs were asked.
pub fn reopen_all() -> usize {
    let Ok(mut writers) = WRITERS.lock() else {
        return 0;
    };
    let map = writers.get_or_insert_with(HashMap::new);
    map.retain(|_, r| r.shared.strong_count() > 0);
    let mut n = 0;
    for r in map.values() {
        if let Some(shared) = r.shared.upgrade() {
            shared.reopen.store(true, Ordering::Release);
            n += 1;
        }
        if let Some(tx) = r.tx.upgrade() {
            // When the queue is full the writer is busy: it sees the flag
            // before its next line.
            let _ = tx.try_send(Msg::Wake);
        }
    }
    n
}

/// What a line says of a request, taken as the request goes (header values
/// and the URI are reference-counted: taking them copies no bytes).
#[derive(Debug)]
pub(crate) struct Fields {
    host: Option<HeaderValue>,
    method: Method,
    uri: Uri,
    version: Version,
    referer: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    /// When the router took the request.
    start: Instant,
    /// The logical name (`l5d-dst-service`), once identified.
    pub(crate) service: Option<HeaderValue>,
    /// The concrete name (`l5d-dst-client`), once bound.
    pub(crate) client: Option<HeaderValue>,
    /// The endpoint whose response was given.
    pub(crate) endpoint: Option<SocketAddr>,
}

/// Everything one line says, moved to the writer.
#[derive(Debug)]
struct Record {
    fields: Fields,
    remote: SocketAddr,
    status: u16,
    bytes: Option<u64>,
    trace: TraceId,
    at: SystemTime,
    duration: Duration,
    line: LineOptions,
}

impl Fields {
    /// The fields of a request with this method, URI and headers; the
    /// host is the `Host` header, else the URI's authority (HTTP/2's
    /// `:authority`).
    pub(crate) fn of(method: &Method, uri: Uri, h: &HeaderMap) -> Fields {
        Fields {
            host: h.get(HOST).cloned().or_else(|| authority(&uri)),
            method: method.clone(),
            version: Version::HTTP_11,
            uri,
            referer: h.get(REFERER).cloned(),
            user_agent: h.get(USER_AGENT).cloned(),
            start: Instant::now(),
            service: None,
            client: None,
            endpoint: None,
        }
    }

    /// With the host, `Referer` and `User-Agent` from the fields a
    /// request's HTTP/1 server passed on as written (`name: value\r\n`
    /// lines), when its map has none of them.
    pub(crate) fn opaque(mut self, block: &Bytes) -> Fields {
        if block.is_empty() {
            return self;
        }
        let value = |name: &[u8]| {
            let v = crate::http1::field(block, name)?;
            HeaderValue::from_maybe_shared(block.slice_ref(v)).ok()
        };
        if self.host.is_none() {
            self.host = value(b"host");
        }
        if self.referer.is_none() {
            self.referer = value(b"referer");
        }
        if self.user_agent.is_none() {
            self.user_agent = value(b"user-agent");
        }
        self
    }

    /// With the request's HTTP version.
    pub(crate) fn version(mut self, v: Version) -> Fields {
        self.version = v;
        self
    }

    /// Takes the request as rewritten (`newer`), keeping what the first
    /// fields knew that it does not: the start, the version, the names,
    /// the host when the rewrite has none.
    pub(crate) fn refine(&mut self, newer: Fields) {
        let Fields {
            host,
            method,
            uri,
            referer,
            user_agent,
            ..
        } = newer;
        if host.is_some() {
            self.host = host;
        }
        self.method = method;
        self.uri = uri;
        self.referer = referer;
        self.user_agent = user_agent;
    }

    /// Queues the line of the request, answered with `status`.
    pub(crate) fn log(
        self,
        log: &AccessLog,
        remote: SocketAddr,
        status: u16,
        bytes: Option<u64>,
        trace: &TraceId,
    ) {
        let duration = self.start.elapsed();
        log.send(Record {
            fields: self,
            remote,
            status,
            bytes,
            trace: *trace,
            at: SystemTime::now(),
            duration,
            line: log.line,
        });
    }
}

/// The URI's authority as a header value.
fn authority(uri: &Uri) -> Option<HeaderValue> {
    uri.authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
}

impl AccessLog {
    /// The writer of `path` (started, or the running one, which takes
    /// `options`), and a handle writing `line`s; `dropped` counts lines
    /// lost to a full queue. Fails when the file cannot be opened.
    pub fn open(
        path: &Path,
        options: FileOptions,
        line: LineOptions,
        dropped: Arc<Counter>,
    ) -> std::io::Result<AccessLog> {
        let path = std::path::absolute(path)?;
        let mut writers = WRITERS
            .lock()
            .map_err(|_| std::io::Error::other("access log registry poisoned"))?;
        let map = writers.get_or_insert_with(HashMap::new);
        if let Some(r) = map.get(&path)
            && let (Some(tx), Some(shared)) = (r.tx.upgrade(), r.shared.upgrade())
        {
            if let Ok(mut o) = shared.options.lock()
                && *o != options
            {
                *o = options;
                let _ = tx.try_send(Msg::Wake);
            }
            return Ok(AccessLog {
                tx,
                dropped,
                line,
                _shared: shared,
            });
        }
        let sink = Sink::open(path.clone(), options, SystemTime::now())?;
        let shared = Arc::new(Shared {
            reopen: AtomicBool::new(false),
            options: Mutex::new(options),
        });
        let (tx, rx) = mpsc::channel::<Msg>(QUEUE);
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("strait-accesslog".into())
            .spawn(move || write_loop(rx, sink, &writer))?;
        map.retain(|_, r| r.shared.strong_count() > 0);
        map.insert(
            path,
            Registered {
                tx: tx.downgrade(),
                shared: Arc::downgrade(&shared),
            },
        );
        Ok(AccessLog {
            tx,
            dropped,
            line,
            _shared: shared,
        })
    }

    fn send(&self, r: Record) {
        if self.tx.try_send(Msg::Line(Box::new(r))).is_err() {
            self.dropped.incr();
        }
    }
}

/// The writer thread: formats and writes lines until every handle is gone.
fn write_loop(mut rx: mpsc::Receiver<Msg>, mut sink: Sink, shared: &Shared) {
    let mut line = String::with_capacity(512);
    while let Some(msg) = rx.blocking_recv() {
        if let Ok(o) = shared.options.lock()
            && *o != sink.options
        {
            sink.configure(*o, SystemTime::now());
        }
        if shared.reopen.swap(false, Ordering::AcqRel) {
            sink.reopen();
        }
        if let Msg::Line(r) = msg {
            line.clear();
            format_record(&r, &mut line);
            sink.write_line(line.as_bytes(), SystemTime::now());
        }
        // Flush when the queue is drained, so lines appear promptly.
        if rx.is_empty() {
            sink.flush();
        }
    }
    sink.flush();
}

fn format_record(r: &Record, out: &mut String) {
    match r.line.format {
        Format::Linkerd => linkerd_line(r, out),
        Format::Json => json_line(r, out),
    }
}

/// A header value as text; empty when absent or not visible ASCII.
fn text(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The request target as logged: origin-form as it came, else the whole
/// URI.
fn target(uri: &Uri) -> std::borrow::Cow<'_, str> {
    match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => pq.as_str().into(),
        _ => uri.to_string().into(),
    }
}

/// Linkerd's line (`AccessLogger.scala`, http and h2).
fn linkerd_line(r: &Record, out: &mut String) {
    let f = &r.fields;
    let (version, zone) = if r.line.h2 {
        ("HTTP/2", "+0000")
    } else if f.version == Version::HTTP_10 {
        ("HTTP/1.0", "UTC")
    } else {
        ("HTTP/1.1", "UTC")
    };
    let _ = write!(
        out,
        "{} {} - - [{} {zone}] \"{} {} {version}\" {} ",
        dash(text(&f.host)),
        r.remote.ip(),
        clf_date(r.at),
        f.method.as_str(),
        target(&f.uri),
        r.status,
    );
    match r.bytes {
        Some(b) if !r.line.h2 => {
            let _ = write!(out, "{b}");
        }
        _ => out.push('-'),
    }
    let _ = writeln!(
        out,
        " \"{}\" \"{}\"",
        dash(text(&f.referer)),
        dash(text(&f.user_agent)),
    );
}

/// Strait's JSON line: `ts` (RFC 3339, UTC, milliseconds), `duration_ms`
/// (to the response head, fractional), `method`, `uri`, `version`,
/// `host`, `status`, `bytes`, `service`, `client`, `endpoint`, `trace_id`,
/// `l5d_reqid`, `remote`, `referer`, `user_agent`; absent values are null.
fn json_line(r: &Record, out: &mut String) {
    let f = &r.fields;
    out.push_str("{\"ts\":\"");
    rfc3339_millis(r.at, out);
    let _ = write!(
        out,
        "\",\"duration_ms\":{:.3},\"method\":",
        r.duration.as_secs_f64() * 1000.0
    );
    json_str(out, Some(f.method.as_str()));
    out.push_str(",\"uri\":");
    json_str(out, Some(&target(&f.uri)));
    out.push_str(",\"version\":");
    json_str(
        out,
        Some(match (r.line.h2, f.version) {
            (true, _) => "HTTP/2",
            (false, Version::HTTP_10) => "HTTP/1.0",
            _ => "HTTP/1.1",
        }),
    );
    out.push_str(",\"host\":");
    json_header(out, &f.host);
    let _ = write!(out, ",\"status\":{},\"bytes\":", r.status);
    match r.bytes {
        Some(b) => {
            let _ = write!(out, "{b}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"service\":");
    json_header(out, &f.service);
    out.push_str(",\"client\":");
    json_header(out, &f.client);
    out.push_str(",\"endpoint\":");
    match f.endpoint {
        Some(a) => {
            let _ = write!(out, "\"{a}\"");
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"trace_id\":\"{}\",\"l5d_reqid\":\"{:016x}\",\"remote\":\"{}\",\"referer\":",
        r.trace.hex().as_str(),
        r.trace.lo,
        r.remote
    );
    json_header(out, &f.referer);
    out.push_str(",\"user_agent\":");
    json_header(out, &f.user_agent);
    out.push_str("}\n");
}

/// A header value as a JSON string (invalid UTF-8 replaced), or null.
fn json_header(out: &mut String, v: &Option<HeaderValue>) {
    match v {
        Some(v) => json_str(out, Some(&String::from_utf8_lossy(v.as_bytes()))),
        None => json_str(out, None),
    }
}

/// A JSON string, or null.
fn json_str(out: &mut String, s: Option<&str>) {
    let Some(s) = s else {
        out.push_str("null");
        return;
    };
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Seconds since the epoch (0 before it).
fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Seconds since the epoch as (year, month, day, hour, minute, second),
/// UTC.
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `dd/MM/yyyy:HH:mm:ss` in UTC.
fn clf_date(t: SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = civil(epoch_secs(t));
    format!("{d:02}/{m:02}/{y:04}:{hh:02}:{mm:02}:{ss:02}")
}

/// `dd/MM/yyyy:HH:mm:ss +0000` in UTC.
pub fn clf_time(t: SystemTime) -> String {
    format!("{} +0000", clf_date(t))
}

/// `yyyy-MM-ddTHH:mm:ss.SSSZ`.
fn rfc3339_millis(t: SystemTime, out: &mut String) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let (y, m, d, hh, mm, ss) = civil(since.as_secs());
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:03}Z",
        since.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ------------------------------------------------------------------ file

/// The file of an access log, rolled by its policy (Twitter's
/// `FileHandler`). Every method takes the time, so tests can move it.
#[derive(Debug)]
pub struct Sink {
    path: PathBuf,
    /// The file name before its last dot, and from it (`access`, `.log`).
    stem: String,
    ext: String,
    options: FileOptions,
    file: Option<std::io::BufWriter<File>>,
    /// When the current file was opened: its rolled name says so.
    opened: SystemTime,
    /// Bytes in the current file.
    written: u64,
    /// When a time policy next rolls.
    next_roll: Option<SystemTime>,
    /// Whether the last write failed (logged once until one works).
    failing: bool,
}

impl Sink {
    /// Opens `path` (created if missing, in a directory that must exist;
    /// truncated unless `options.append`) at time `now`.
    pub fn open(path: PathBuf, options: FileOptions, now: SystemTime) -> std::io::Result<Sink> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (stem, ext) = match name.rfind('.') {
            Some(n) if n > 0 => (name[..n].to_owned(), name[n..].to_owned()),
            _ => (name, String::new()),
        };
        let mut sink = Sink {
            path,
            stem,
            ext,
            options,
            file: None,
            opened: now,
            written: 0,
            next_roll: None,
            failing: false,
        };
        sink.open_file(options.append, now)?;
        Ok(sink)
    }

    fn open_file(&mut self, append: bool, now: SystemTime) -> std::io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&self.path)?;
        self.written = file.metadata().map_or(0, |m| m.len());
        self.file = Some(std::io::BufWriter::with_capacity(64 * 1024, file));
        self.opened = now;
        self.next_roll = next_roll(self.options.roll, now);
        Ok(())
    }

    /// Takes new options (a reload): a new time policy counts from when
    /// the file was opened.
    pub fn configure(&mut self, options: FileOptions, _now: SystemTime) {
        self.options = options;
        self.next_roll = next_roll(options.roll, self.opened);
    }

    /// Reopens the path (appending): lines so far stay in the file that
    /// was open, wherever it was moved; a new one is created if it is
    /// gone. On failure the open file is kept.
    pub fn reopen(&mut self) {
        self.flush();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path);
        match file {
            Ok(file) => {
                self.written = file.metadata().map_or(0, |m| m.len());
                self.file = Some(std::io::BufWriter::with_capacity(64 * 1024, file));
                tracing::info!(path = %self.path.display(), "access log reopened");
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot reopen the access log; writing on to the file open");
            }
        }
    }

    /// Writes one line at time `now`, rolling first when the policy says.
    pub fn write_line(&mut self, line: &[u8], now: SystemTime) {
        let len = line.len() as u64;
        let due = match (self.next_roll, self.options.roll) {
            (Some(t), _) => now > t,
            // A line longer than the size alone: no empty file rolled.
            (None, RollPolicy::MaxSize(max)) => self.written > 0 && self.written + len > max,
            _ => false,
        };
        if due {
            self.roll(now);
        }
        let Some(file) = &mut self.file else {
            return;
        };
        match file.write_all(line) {
            Ok(()) => {
                self.written += len;
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot write the access log");
                }
                self.failing = true;
            }
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if let Some(f) = &mut self.file
            && let Err(e) = f.flush()
            && !self.failing
        {
            self.failing = true;
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the access log");
        }
    }

    /// The name the current file gets when rolled:
    /// `<stem>-<suffix><ext>`, the suffix the time it was opened.
    pub fn rolled_name(&self) -> PathBuf {
        let suffix = roll_suffix(self.options.roll, self.opened);
        self.path
            .with_file_name(format!("{}-{suffix}{}", self.stem, self.ext))
    }

    /// Renames the file to its rolled name and starts a new one; prunes
    /// rolled files beyond `rotate_count`. When the rolled name is taken
    /// (two size rolls within a second), the file is added to its end
    /// rather than replacing it, so no line is lost.
    fn roll(&mut self, now: SystemTime) {
        self.flush();
        self.file = None;
        let to = self.rolled_name();
        let moved = if to.exists() {
            append_to(&self.path, &to).and_then(|()| std::fs::remove_file(&self.path))
        } else {
            std::fs::rename(&self.path, &to)
        };
        if let Err(e) = moved {
            tracing::warn!(path = %self.path.display(), to = %to.display(), error = %e, "cannot roll the access log");
        }
        // A new file (or, if the roll failed, the same one, appended to).
        if let Err(e) = self.open_file(true, now) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot open the access log after rolling it");
            self.next_roll = next_roll(self.options.roll, now);
        }
        self.prune();
    }

    /// Keeps the newest `rotate_count` rolled files (by name, which sorts
    /// by time): `<stem>-…<ext>` beside the log.
    fn prune(&self) {
        let Ok(keep) = usize::try_from(self.options.rotate_count) else {
            return;
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let prefix = format!("{}-", self.stem);
        let mut rolled: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(&self.ext) && n.len() > prefix.len()
            })
            .map(|e| e.path())
            .filter(|p| *p != self.path)
            .collect();
        rolled.sort();
        let extra = rolled.len().saturating_sub(keep);
        for p in &rolled[..extra] {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "cannot remove a rolled access log");
            }
        }
    }
}

/// Adds `from`'s bytes to the end of `to`.
fn append_to(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = OpenOptions::new().append(true).open(to)?;
    std::io::copy(&mut src, &mut dst)?;
    dst.flush()
}

/// The suffix of a file opened at `opened` (UTC): `yyyyMMdd-HH` hourly,
/// `yyyyMMdd` daily and weekly, `yyyyMMdd-HHmmss` by size, `yyyy`
/// otherwise (such files are never rolled).
fn roll_suffix(policy: RollPolicy, opened: SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = civil(epoch_secs(opened));
    match policy {
        RollPolicy::Hourly => format!("{y:04}{m:02}{d:02}-{hh:02}"),
        RollPolicy::Daily | RollPolicy::Weekly(_) => format!("{y:04}{m:02}{d:02}"),
        RollPolicy::MaxSize(_) => format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}"),
        RollPolicy::Never | RollPolicy::SigHup => format!("{y:04}"),
    }
}

/// When a file opened at `now` is next rolled by a time policy (UTC):
/// the next hour, the next midnight, the next midnight that starts the
/// day of the week.
fn next_roll(policy: RollPolicy, now: SystemTime) -> Option<SystemTime> {
    let secs = epoch_secs(now);
    let hour = secs - secs % 3600;
    let day = secs - secs % 86_400;
    let at = match policy {
        RollPolicy::Hourly => hour + 3600,
        RollPolicy::Daily => day + 86_400,
        RollPolicy::Weekly(weekday) => {
            let mut next = day / 86_400 + 1;
            // 1970-01-01 was a Thursday (5, with Sunday 1).
            while (next + 4) % 7 + 1 != u64::from(weekday) {
                next += 1;
            }
            next * 86_400
        }
        RollPolicy::Never | RollPolicy::SigHup | RollPolicy::MaxSize(_) => return None,
    };
    Some(UNIX_EPOCH + Duration::from_secs(at))
}

#[cfg(test)]
#[path = "accesslog_tests.rs"]
mod tests;
