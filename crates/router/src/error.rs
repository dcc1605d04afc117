//! Every error the router makes, and the one function that turns an error
//! into a response (status, `text/plain` body, URL-encoded `l5d-err`).

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use strait_dtab::{Dtab, LimitExceeded, Path};

/// Why the router could not get a response from a backend.
#[derive(Debug)]
pub enum RouteError {
    /// `CONNECT`: Strait does not tunnel.
    Connect,
    /// The identifier could not name the request.
    Unidentified {
        /// `GET /path`.
        request: String,
        /// The client's address.
        from: SocketAddr,
        /// The identifier's reason.
        reason: String,
    },
    /// More `Via` entries than `maxCallDepth`.
    CallDepth(u32),
    /// `l5d-dtab` / `l5d-ctx-dtab` did not parse.
    BadDtab(String),
    /// A request bound under a dtab override picked an address overrides
    /// may not reach (Strait's own, or a `/$/inet` address outside
    /// `inetAllow`): a 403, the reason in `l5d-err`.
    Forbidden(String),
    /// The name bound to nothing.
    NoRoute {
        /// The logical name.
        service: Path,
        /// The router's dtab.
        base: Dtab,
        /// The request's local dtab.
        local: Dtab,
    },
    /// Binding failed.
    BindingFailed {
        /// The logical name.
        service: Path,
        /// The namer's message.
        message: String,
    },
    /// Binding went over a `bindingLimits` cap.
    BindingLimit {
        /// The logical name.
        service: Path,
        /// Which cap.
        limit: LimitExceeded,
        /// Whether the request carried a local dtab (`l5d-dtab`,
        /// `l5d-ctx-dtab`): then the request is at fault (400), else the
        /// router's dtab (502).
        local: bool,
    },
    /// Binding did not finish in time.
    BindingTimeout {
        /// The logical name.
        service: Path,
        /// `bindingTimeoutMs`.
        timeout: Duration,
    },
    /// `totalTimeoutMs` (or the request's `l5d-ctx-deadline`) passed.
    TotalTimeout {
        /// The logical name.
        service: Path,
        /// The timeout that applied.
        timeout: Duration,
    },
    /// `requestAttemptTimeoutMs` passed on the last attempt.
    AttemptTimeout {
        /// The concrete name.
        client: Path,
        /// `requestAttemptTimeoutMs`.
        timeout: Duration,
    },
    /// No connection could be made to the picked endpoint.
    ConnectFailed {
        /// The picked address.
        selected: SocketAddr,
        /// Why, when known (a failed TLS handshake).
        reason: Option<Box<str>>,
        /// The logical name.
        service: Path,
        /// The concrete name.
        client: Path,
        /// Every address of the concrete name.
        addresses: Vec<SocketAddr>,
    },
    /// The concrete name has no endpoints.
    NoEndpoints {
        /// The logical name.
        service: Path,
        /// The concrete name.
        client: Path,
        /// What the namer says about it.
        state: String,
    },
    /// `maxConcurrentRequests` reached.
    Overloaded(u32),
    /// The client's request is one a proxy must not forward: a malformed
    /// or ambiguous head (two `Host`s, userinfo), a body the client broke
    /// off or framed wrong (400), a transfer coding Strait cannot pass on
    /// (501). The client's fault: no backend is blamed.
    Refused {
        /// 400, 501, ...
        status: StatusCode,
        /// What was wrong, and where (the header's name).
        message: String,
    },
    /// The backend did not start its response within the timeout.
    ResponseTimeout {
        /// The concrete name.
        client: Path,
        /// The timeout.
        timeout: Duration,
    },
    /// The request failed after it may have reached the backend.
    Upstream {
        /// What went wrong.
        message: String,
        /// Whether the request was never written (safe to retry upstream).
        retryable: bool,
    },
}

/// Finagle's `Duration.toString`: `10.seconds`, `1500.milliseconds`.
pub fn finagle_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}.seconds", ms / 1000)
    } else {
        format!("{ms}.milliseconds")
    }
}

fn write_dtab(out: &mut String, dtab: &Dtab) {
    for d in dtab.dentries() {
        let _ = writeln!(out, "  {} => {}", d.prefix, d.dst);
    }
    if dtab.is_empty() {
        out.push_str("  \n");
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Connect => f.write_str(
                "CONNECT is only for names this router routes (a tunnel for the plain HTTP requests inside); send other requests to it directly or as http_proxy",
            ),
            RouteError::Unidentified { request, from, reason } => {
                write!(f, "Unknown destination: Request(\"{request}\", from /{from}) / {reason}")
            }
            RouteError::CallDepth(max) => write!(
                f,
                "Maximum number of calls ({max}) has been exceeded. Please check for proxy loops."
            ),
            RouteError::BadDtab(m) | RouteError::Forbidden(m) => f.write_str(m),
            RouteError::NoRoute { service, base, local } => {
                let mut s = format!("Unable to route request!\n\nservice name: {service}\ndtab:\n");
                write_dtab(&mut s, &base.concat(local));
                s.push_str("base dtab:\n");
                write_dtab(&mut s, base);
                s.push_str("override dtab:\n");
                write_dtab(&mut s, local);
                f.write_str(s.trim_end_matches('\n'))
            }
            RouteError::BindingFailed { service, message } => {
                write!(f, "Unable to route request!\n\nservice name: {service}\nbinding failed: {message}")
            }
            RouteError::BindingLimit { service, limit, local } => {
                let key = match limit {
                    LimitExceeded::Nodes(_) => "bindingLimits.maxNodes",
                    LimitExceeded::Leaves(_) => "bindingLimits.maxLeaves",
                    LimitExceeded::Deadline => "bindingTimeoutMs",
                };
                write!(f, "Unable to route request!\n\nservice name: {service}\nbinding failed: {limit} ({key})")?;
                if *local {
                    f.write_str("; the request's dtab (l5d-dtab, l5d-ctx-dtab) expands too far")?;
                }
                Ok(())
            }
            RouteError::BindingTimeout { service, timeout } => write!(
                f,
                "exceeded {} to unspecified while dyn binding {service}",
                finagle_duration(*timeout)
            ),
            RouteError::TotalTimeout { service, timeout } => write!(
                f,
                "exceeded {} to {service} while waiting for a response for the request, including retries (if applicable)",
                finagle_duration(*timeout)
            ),
            RouteError::AttemptTimeout { client, timeout } => write!(
                f,
                "exceeded {} to {client} while waiting for a response for an individual request, excluding retries",
                finagle_duration(*timeout)
            ),
            RouteError::ConnectFailed { selected, reason, service, client, addresses } => {
                write!(f, "Unable to establish connection to {selected}")?;
                if let Some(why) = reason {
                    write!(f, ": {why}")?;
                }
                write!(f, ".\n\nservice name: {service}\nclient name: {client}\naddresses: [")?;
                for (i, a) in addresses.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                write!(f, "]\nselected address: {selected}")
            }
            RouteError::NoEndpoints { service, client, state } => write!(
                f,
                "Unable to route request!\n\nservice name: {service}\nclient name: {client}\naddresses: {state}"
            ),
            RouteError::Overloaded(n) => {
                write!(f, "Too many concurrent requests: this server allows {n} (maxConcurrentRequests)")
            }
            RouteError::Refused { message, .. } => f.write_str(message),
            RouteError::ResponseTimeout { client, timeout } => write!(
                f,
                "exceeded {} to {client} while waiting for the response to begin (responseTimeoutMs)",
                finagle_duration(*timeout)
            ),
            RouteError::Upstream { message, .. } => f.write_str(message),
        }
    }
}

impl RouteError {
    /// The status Linkerd 1 answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            RouteError::Connect => StatusCode::METHOD_NOT_ALLOWED,
            RouteError::Refused { status, .. } => *status,
            RouteError::ResponseTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            RouteError::Forbidden(_) => StatusCode::FORBIDDEN,
            RouteError::Unidentified { .. } | RouteError::CallDepth(_) | RouteError::BadDtab(_) => {
                StatusCode::BAD_REQUEST
            }
            RouteError::BindingLimit { local: true, .. } => StatusCode::BAD_REQUEST,
            RouteError::BindingLimit { local: false, .. } => StatusCode::BAD_GATEWAY,
            RouteError::BindingTimeout { .. }
            | RouteError::Overloaded(_)
            | RouteError::TotalTimeout { .. }
            | RouteError::AttemptTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RouteError::NoRoute { .. }
            | RouteError::BindingFailed { .. }
            | RouteError::ConnectFailed { .. }
            | RouteError::NoEndpoints { .. }
            | RouteError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// Whether the request certainly never reached a backend.
    pub fn never_sent(&self) -> bool {
        match self {
            RouteError::Upstream { retryable, .. } => *retryable,
            RouteError::TotalTimeout { .. }
            | RouteError::AttemptTimeout { .. }
            | RouteError::ResponseTimeout { .. } => false,
            _ => true,
        }
    }

    /// The response for this error: `text/plain` body with the message
    /// (capped at `max_body` bytes, empty when `clear` is set), `l5d-err`
    /// with the message URL-encoded (capped at `max_header` bytes), and
    /// `l5d-retryable: true` when the request never reached a backend.
    pub fn to_response(&self, max_header: usize, max_body: usize, clear: bool) -> Response<Bytes> {
        let msg = self.to_string();
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = self.status();
        if clear {
            return resp;
        }
        let mut body = msg.clone().into_bytes();
        body.truncate(max_body);
        *resp.body_mut() = Bytes::from(body);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut enc = url_encode(&msg);
        if enc.len() > max_header {
            let mut cut = max_header;
            // Do not cut a %XX escape in half.
            while cut > 0
                && enc
                    .as_bytes()
                    .get(cut.saturating_sub(2)..cut)
                    .is_some_and(|w| w.contains(&b'%'))
            {
                cut -= 1;
            }
            enc.truncate(cut);
        }
        if let Ok(v) = HeaderValue::from_str(&enc) {
            h.insert("l5d-err", v);
        }
        if self.never_sent() && self.status() == StatusCode::BAD_GATEWAY {
            h.insert("l5d-retryable", HeaderValue::from_static("true"));
        }
        if let RouteError::Connect = self {
            h.insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE"),
            );
        }
        resp
    }
}

/// Java's `URLEncoder.encode(s, "ISO-8859-1")`: `A-Z a-z 0-9 . - * _` kept,
/// space as `+`, other Latin-1 characters as `%XX`, anything else as `%3F`
/// (`?`, Java's replacement).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for c in s.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '*' | '_' => out.push(c),
            ' ' => out.push('+'),
            c => {
                let b = u32::from(c);
                let b = if b <= 0xff { b } else { u32::from(b'?') };
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn url_encoding_is_javas() {
        assert_eq!(
            url_encode("Unable to route request!\n"),
            "Unable+to+route+request%21%0A"
        );
        assert_eq!(url_encode("a/b é ☃"), "a%2Fb+%E9+%3F");
    }

    #[test]
    fn no_route_message_lists_the_dtabs_as_linkerd_does() {
        let e = RouteError::NoRoute {
            service: Path::read("/svc/hello").unwrap(),
            base: Dtab::read("/svc=>/#/io.l5d.consul/dc1").unwrap(),
            local: Dtab::empty(),
        };
        assert_eq!(
            e.to_string(),
            "Unable to route request!\n\nservice name: /svc/hello\ndtab:\n  /svc => /#/io.l5d.consul/dc1\nbase dtab:\n  /svc => /#/io.l5d.consul/dc1\noverride dtab:\n  "
        );
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn a_binding_over_a_cap_names_the_cap_and_blames_the_local_dtab() {
        let e = RouteError::BindingLimit {
            service: Path::read("/svc/hello").unwrap(),
            limit: LimitExceeded::Nodes(10_000),
            local: true,
        };
        assert_eq!(
            e.to_string(),
            "Unable to route request!\n\nservice name: /svc/hello\nbinding failed: binding too large: more than 10000 name tree nodes (bindingLimits.maxNodes); the request's dtab (l5d-dtab, l5d-ctx-dtab) expands too far"
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = RouteError::BindingLimit {
            service: Path::read("/svc/hello").unwrap(),
            limit: LimitExceeded::Leaves(1000),
            local: false,
        };
        assert!(
            e.to_string()
                .ends_with("more than 1000 bound names (bindingLimits.maxLeaves)")
        );
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY, "the router's own dtab");
    }

    #[test]
    fn durations_print_as_finagle_does() {
        assert_eq!(finagle_duration(Duration::from_secs(10)), "10.seconds");
        assert_eq!(
            finagle_duration(Duration::from_millis(1500)),
            "1500.milliseconds"
        );
    }
}
