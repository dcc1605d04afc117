//! `httpAccessLog`: one line per request, in Linkerd 1's format (Apache
//! common log plus referer and user agent), with the trace id appended:
//!
//! `host remote - - [dd/MM/yyyy:HH:mm:ss +0000] "METHOD uri HTTP/1.1" status bytes "referer" "user-agent" "trace-id"`
//!
//! Linkerd logs only requests that reached a client; Strait also logs the
//! ones it answered itself (unidentified, unroutable, refused by a check,
//! timed out, overloaded), with the status it gave. The trace id (32 hex
//! digits when 128-bit, else 16; [`crate::trace`]) is the last field, so
//! tools that read Linkerd's fields by position still read them.
//!
//! Lines go through a bounded channel to a writer task, so a slow disk never
//! blocks a request; when the channel is full, lines are dropped and
//! counted.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HOST, HeaderMap, HeaderValue, REFERER, USER_AGENT};
use http::{Method, Uri};
use tokio::sync::mpsc;

use crate::stats::Counter;
use crate::trace::TraceId;

/// How many lines may wait for the writer.
const QUEUE: usize = 8192;

/// A handle to the access log writer.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<String>,
    dropped: Arc<Counter>,
}

/// What one line says about a request.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The `Host` header.
    pub host: &'a str,
    /// The client's address.
    pub remote: std::net::SocketAddr,
    /// Method.
    pub method: &'a str,
    /// Path and query.
    pub uri: &'a str,
    /// Response status.
    pub status: u16,
    /// `Content-Length` of the response, if known.
    pub bytes: Option<u64>,
    /// `Referer`.
    pub referer: &'a str,
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// The trace id, in hex.
    pub trace_id: &'a str,
}

/// What a line says of a request, taken as the request goes (header values
/// and the URI are reference-counted: taking them copies no bytes).
#[derive(Debug)]
pub(crate) struct Fields {
    host: Option<HeaderValue>,
    method: Method,
    uri: Uri,
    referer: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
}

impl Fields {
    /// The fields of a request with this method, URI and headers.
    pub(crate) fn of(method: &Method, uri: Uri, h: &HeaderMap) -> Fields {
        Fields {
            host: h.get(HOST).cloned(),
            method: method.clone(),
            uri,
            referer: h.get(REFERER).cloned(),
            user_agent: h.get(USER_AGENT).cloned(),
        }
    }

    /// Writes the line of the request, answered with `status`.
    pub(crate) fn log(
        &self,
        log: &AccessLog,
        remote: std::net::SocketAddr,
        status: u16,
        bytes: Option<u64>,
        trace: &TraceId,
    ) {
        // Origin-form (the usual): the path and query as they came.
        let absolute;
        let uri = match (self.uri.scheme(), self.uri.path_and_query()) {
            (None, Some(pq)) => pq.as_str(),
            _ => {
                absolute = self.uri.to_string();
                &absolute
            }
        };
        let id = trace.hex();
        log.log(&Entry {
            host: text(&self.host),
            remote,
            method: self.method.as_str(),
            uri,
            status,
            bytes,
            referer: text(&self.referer),
            user_agent: text(&self.user_agent),
            trace_id: id.as_str(),
        });
    }
}

impl AccessLog {
    /// Opens (appends to) `path` and starts the writer task; `dropped`
    /// counts lines lost to a full queue.
    pub fn open(path: PathBuf, dropped: Arc<Counter>) -> std::io::Result<AccessLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("strait-accesslog".into())
            .spawn(move || {
                let mut w = std::io::BufWriter::new(file);
                while let Some(line) = rx.blocking_recv() {
                    let _ = w.write_all(line.as_bytes());
                    // Flush when the queue is drained, so lines appear promptly.
                    if rx.is_empty() {
                        let _ = w.flush();
                    }
                }
                let _ = w.flush();
            })?;
        Ok(AccessLog { tx, dropped })
    }

    /// Queues one line.
    pub fn log(&self, e: &Entry<'_>) {
        let bytes = e.bytes.map_or_else(|| "-".to_owned(), |b| b.to_string());
        let line = format!(
            "{} {} - - [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\" \"{}\"\n",
            dash(e.host),
            e.remote.ip(),
            clf_time(SystemTime::now()),
            e.method,
            e.uri,
            e.status,
            bytes,
            dash(e.referer),
            dash(e.user_agent),
            dash(e.trace_id),
        );
        if self.tx.try_send(line).is_err() {
            self.dropped.incr();
        }
    }
}

/// A header value as text; empty when absent or not visible ASCII.
fn text(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// `dd/MM/yyyy:HH:mm:ss +0000` in UTC.
pub fn clf_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:02}/{m:02}/{y:04}:{:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_common_log_format_in_utc() {
        assert_eq!(clf_time(UNIX_EPOCH), "01/01/1970:00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000); // date -u -d @1795000000
        assert_eq!(clf_time(t), "18/11/2026:11:06:40 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(clf_time(leap), "29/02/2000:00:00:00 +0000");
    }
}
