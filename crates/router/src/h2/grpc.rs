//! gRPC on the h2 router: `grpc-timeout` (a deadline, honoured and passed
//! on), `grpc-status` (what the gRPC classifiers read), and router errors
//! as gRPC errors, which a gRPC client can read where a bare HTTP status
//! would reach the application as a vague `UNKNOWN` or `INTERNAL`.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::error::{RouteError, url_encode};
use crate::retry::{GrpcClassifier, ResponseClass};

/// `grpc-timeout`.
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// `grpc-status`.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `UNAVAILABLE`: what a lost connection or an unreachable service is.
pub const UNAVAILABLE: u32 = 14;
/// `DEADLINE_EXCEEDED`.
pub const DEADLINE_EXCEEDED: u32 = 4;

/// Whether a request is a gRPC call (`content-type: application/grpc`,
/// `application/grpc+proto`, ...).
pub fn is_grpc(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The `grpc-timeout` of a request: at most 8 digits and a unit (`H`,
/// `M`, `S`, `m`, `u`, `n`). One that does not parse is ignored, as gRPC
/// servers do.
pub fn read_timeout(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(GRPC_TIMEOUT)?.as_bytes();
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n.saturating_mul(3600)),
        b"M" => Duration::from_secs(n.saturating_mul(60)),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `d` as a `grpc-timeout` value: the finest unit whose count fits in 8
/// digits (so no precision is lost that the format could keep).
pub fn timeout_value(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let ns = d.as_nanos();
    let (n, unit) = if ns <= MAX {
        (ns, 'n')
    } else if ns / 1_000 <= MAX {
        (ns / 1_000, 'u')
    } else if ns / 1_000_000 <= MAX {
        (ns / 1_000_000, 'm')
    } else if ns / 1_000_000_000 <= MAX {
        (ns / 1_000_000_000, 'S')
    } else if ns / 60_000_000_000 <= MAX {
        (ns / 60_000_000_000, 'M')
    } else {
        ((ns / 3_600_000_000_000).min(MAX), 'H')
    };
    let mut s = String::with_capacity(10);
    let _ = write!(s, "{n}{unit}");
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("0n"))
}

/// The `grpc-status` in `h`: `Some(Ok(code))`, `Some(Err(()))` when it is
/// not a number (Linkerd reads that as `UNKNOWN`), `None` when absent.
pub fn status(h: &HeaderMap) -> Option<Result<u32, ()>> {
    let v = h.get(GRPC_STATUS)?;
    Some(
        std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(()),
    )
}

/// What a gRPC classifier makes of a call that ended with `code`.
pub fn classify_code(c: &GrpcClassifier, code: u32) -> ResponseClass {
    if c.success.contains(code) {
        ResponseClass::Success
    } else {
        ResponseClass::Failure {
            retryable: c.retryable.contains(code),
        }
    }
}

/// The response headers' class under a gRPC classifier (Linkerd's
/// "early" answer): a trailers-only response (`grpc-status` already in
/// the headers) is classified now; an HTTP error status is a failure
/// (retryable for `grpc.compliant`'s 429, 502, 503, 504); anything else
/// waits for the trailers ([`ResponseClass::Pending`]).
pub fn classify_head(c: &GrpcClassifier, status: StatusCode, h: &HeaderMap) -> ResponseClass {
    if let Some(code) = self::status(h) {
        return classify_code(c, code.unwrap_or(2));
    }
    if status.is_client_error() || status.is_server_error() {
        let retryable = c.compliant && matches!(status.as_u16(), 429 | 502 | 503 | 504);
        return ResponseClass::Failure { retryable };
    }
    ResponseClass::Pending
}

/// The class of a call's end under a gRPC classifier: the trailers'
/// `grpc-status`, or a non-retryable failure when the stream ended
/// without one (as Linkerd: a gRPC response without status trailers is
/// not a success).
pub fn classify_end(c: &GrpcClassifier, trailers: Option<&HeaderMap>) -> bool {
    match trailers.and_then(status) {
        Some(code) => classify_code(c, code.unwrap_or(2)).is_success(),
        None => false,
    }
}

/// The gRPC code of a router error: deadlines are `DEADLINE_EXCEEDED`,
/// everything that another try or another moment may fix (no route yet,
/// no endpoint, a lost connection, overload) `UNAVAILABLE`, the caller's
/// own mistakes `INVALID_ARGUMENT`, a refused override
/// `PERMISSION_DENIED`, a body too large `RESOURCE_EXHAUSTED`.
pub fn code_of(e: &RouteError) -> u32 {
    match e {
        RouteError::TotalTimeout { .. }
        | RouteError::AttemptTimeout { .. }
        | RouteError::ResponseTimeout { .. } => DEADLINE_EXCEEDED,
        RouteError::Forbidden(_) => 7,
        RouteError::Unidentified { .. }
        | RouteError::CallDepth(_)
        | RouteError::BadDtab(_)
        | RouteError::BindingLimit { local: true, .. } => 3,
        RouteError::Connect => 12,
        RouteError::Refused { status, .. } => match status.as_u16() {
            413 | 431 => 8,
            408 => DEADLINE_EXCEEDED,
            503 => UNAVAILABLE,
            501 => 12,
            _ => 3,
        },
        RouteError::NoRoute { .. }
        | RouteError::BindingFailed { .. }
        | RouteError::BindingLimit { local: false, .. }
        | RouteError::BindingTimeout { .. }
        | RouteError::ConnectFailed { .. }
        | RouteError::NoEndpoints { .. }
        | RouteError::Overloaded(_)
        | RouteError::Upstream { .. } => UNAVAILABLE,
    }
}

/// A router error as a gRPC caller reads one: a trailers-only response
/// (HTTP 200, `content-type: application/grpc`, `grpc-status`,
/// `grpc-message`), with Linkerd's `l5d-err` beside it (both capped at
/// `max_header` bytes; none of the text with `clear`).
pub fn error_response(e: &RouteError, max_header: usize, clear: bool) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    let code = code_of(e);
    if let Ok(v) = HeaderValue::from_str(&code.to_string()) {
        h.insert(GRPC_STATUS, v);
    }
    if clear {
        return resp;
    }
    let msg = e.to_string();
    let mut text = percent_encode(&msg);
    cut_escaped(&mut text, max_header);
    if let Ok(v) = HeaderValue::from_str(&text) {
        h.insert(GRPC_MESSAGE, v);
    }
    let mut l5d = url_encode(&msg);
    cut_escaped(&mut l5d, max_header);
    if let Ok(v) = HeaderValue::from_str(&l5d) {
        h.insert("l5d-err", v);
    }
    resp
}

/// gRPC's `grpc-message` encoding: printable ASCII but `%` as is, every
/// other byte of the UTF-8 text as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Cuts `s` to at most `max` bytes, never inside a `%XX` escape.
fn cut_escaped(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    while cut > 0
        && s.as_bytes()
            .get(cut.saturating_sub(2)..cut)
            .is_some_and(|w| w.contains(&b'%'))
    {
        cut -= 1;
    }
    s.truncate(cut);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::retry::GrpcCodes;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_bad_ones_are_ignored() {
        let t = |v| read_timeout(&headers(&[("grpc-timeout", v)]));
        assert_eq!(t("200m"), Some(Duration::from_millis(200)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("3M"), Some(Duration::from_secs(180)));
        assert_eq!(t("5S"), Some(Duration::from_secs(5)));
        assert_eq!(t("7u"), Some(Duration::from_micros(7)));
        assert_eq!(t("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(t("123456789m"), None, "more than 8 digits");
        assert_eq!(t("m"), None);
        assert_eq!(t("10x"), None);
        assert_eq!(t("-1S"), None);
    }

    #[test]
    fn timeouts_are_written_in_the_finest_unit_that_fits() {
        assert_eq!(timeout_value(Duration::from_nanos(500)), "500n");
        assert_eq!(timeout_value(Duration::from_millis(150)), "150000u");
        assert_eq!(timeout_value(Duration::from_secs(1000)), "1000000m");
        assert_eq!(timeout_value(Duration::from_secs(200_000)), "200000S");
        for d in [
            Duration::from_millis(1),
            Duration::from_millis(199),
            Duration::from_secs(86_400),
        ] {
            let mut h = HeaderMap::new();
            h.insert(GRPC_TIMEOUT, timeout_value(d));
            assert_eq!(read_timeout(&h), Some(d), "round trip of {d:?}");
        }
    }

    #[test]
    fn the_default_grpc_classifier_retries_unavailable_only() {
        let c = GrpcClassifier::default_kind();
        assert_eq!(classify_code(&c, 0), ResponseClass::Success);
        assert_eq!(
            classify_code(&c, 14),
            ResponseClass::Failure { retryable: true }
        );
        assert_eq!(
            classify_code(&c, 13),
            ResponseClass::Failure { retryable: false }
        );
        let ok = StatusCode::OK;
        assert_eq!(
            classify_head(&c, ok, &headers(&[])),
            ResponseClass::Pending,
            "a 200 without grpc-status waits for the trailers"
        );
        assert_eq!(
            classify_head(&c, ok, &headers(&[("grpc-status", "14")])),
            ResponseClass::Failure { retryable: true },
            "trailers-only"
        );
        assert_eq!(
            classify_head(&c, ok, &headers(&[("grpc-status", "x")])),
            ResponseClass::Failure { retryable: false },
            "not a number: UNKNOWN"
        );
        assert_eq!(
            classify_head(&c, StatusCode::SERVICE_UNAVAILABLE, &headers(&[])),
            ResponseClass::Failure { retryable: false }
        );
        let compliant = GrpcClassifier {
            compliant: true,
            ..c
        };
        assert_eq!(
            classify_head(&compliant, StatusCode::SERVICE_UNAVAILABLE, &headers(&[])),
            ResponseClass::Failure { retryable: true }
        );
        assert!(classify_end(&c, Some(&headers(&[("grpc-status", "0")]))));
        assert!(!classify_end(&c, Some(&headers(&[("grpc-status", "5")]))));
        assert!(!classify_end(&c, None), "no status trailers: a failure");
        let five_ok = GrpcClassifier {
            success: GrpcCodes::of(&[0, 5]),
            ..c
        };
        assert!(classify_end(
            &five_ok,
            Some(&headers(&[("grpc-status", "5")]))
        ));
    }

    #[test]
    fn router_errors_reach_grpc_callers_as_trailers_only_responses() {
        let e = RouteError::NoEndpoints {
            service: strait_dtab::Path::read("/svc/x").unwrap(),
            client: strait_dtab::Path::read("/#/io.l5d.fs/x").unwrap(),
            state: "Neg".into(),
        };
        let r = error_response(&e, 1024, false);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[GRPC_STATUS], "14");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/grpc");
        assert!(r.headers().contains_key("l5d-err"));
        assert!(r.body().is_empty());
        let cleared = error_response(&e, 1024, true);
        assert!(!cleared.headers().contains_key("l5d-err"));
        assert!(!cleared.headers().contains_key(GRPC_MESSAGE));
        assert_eq!(percent_encode("a b%é"), "a b%25%C3%A9");
    }
}
