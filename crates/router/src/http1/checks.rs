//! What a proxy must not forward, and the head limits, checked exactly.

use http::Request;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};

use crate::error::RouteError;

/// What [`check_request`] needs of a head whose fields passed the checks
/// while Strait's HTTP/1 server parsed it (see [`super::seen`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checked {
    /// `Name: value\r\n` of every field, in bytes.
    pub block: usize,
    /// Its body's declared length.
    pub length: Option<u64>,
}

/// Refuses what a proxy must not forward (RFC 9112 §3.2, §6.1, §7): more
/// than one `Host`, a `Host` that is not `host[:port]`, userinfo in an
/// absolute-form URI (400), and a transfer coding other than `chunked`,
/// which Strait would otherwise strip with the framing and so corrupt the
/// body (501).
///
/// And the limits, exactly (hyper's read buffer only bounds them roughly):
/// the request line within `maxInitialLineKB` (414), the header block
/// within `maxHeadersKB` (431), a declared body within `maxRequestBodyKB`
/// (413).
///
/// `checked`: the figures of a head whose fields passed as it was parsed;
/// the field checks are then not made again.
pub(crate) fn check_request<B>(
    req: &Request<B>,
    checked: Option<Checked>,
    max_line: usize,
    max_headers: usize,
    max_body: Option<u64>,
) -> Result<(), RouteError> {
    let refuse = |status, message: String| RouteError::Refused { status, message };
    let bad = |message: String| refuse(http::StatusCode::BAD_REQUEST, message);
    let h = req.headers();
    // `METHOD target HTTP/1.1`
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req
            .uri()
            .authority()
            .map_or(0, |a| a.as_str().len() + "http://".len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1".len();
    if line > max_line {
        return Err(refuse(
            http::StatusCode::URI_TOO_LONG,
            format!("the request line is {line} bytes; maxInitialLineKB allows {max_line}"),
        ));
    }
    // `Name: value\r\n` each.
    let block = match checked {
        Some(c) => c.block,
        None => h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum(),
    };
    if block > max_headers {
        return Err(refuse(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers are {block} bytes; maxHeadersKB allows {max_headers}"),
        ));
    }
    let declared = match checked {
        Some(c) => c.length,
        None => h
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok()),
    };
    if let Some((max, len)) = max_body.zip(declared).filter(|(max, len)| len > max) {
        return Err(refuse(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("Content-Length: {len} bytes; maxRequestBodyKB allows {max}"),
        ));
    }
    let userinfo = || {
        let user = req
            .uri()
            .authority()
            .is_some_and(|a| a.as_str().contains('@'));
        if user {
            Err(bad(
                "request target: userinfo (user@host) is not allowed in a request to a proxy"
                    .into(),
            ))
        } else {
            Ok(())
        }
    };
    if checked.is_some() {
        return userinfo();
    }
    let mut hosts = h.get_all(HOST).iter();
    if let Some(host) = hosts.next() {
        if hosts.next().is_some() {
            return Err(bad("Host: the request has more than one Host header".into()));
        }
        if !is_host(host.as_bytes()) {
            return Err(bad(format!(
                "Host: {:?} is not a host[:port]",
                String::from_utf8_lossy(host.as_bytes())
            )));
        }
    }
    userinfo()?;
    for v in h.get_all(TRANSFER_ENCODING) {
        let codings = String::from_utf8_lossy(v.as_bytes());
        if codings
            .split(',')
            .map(str::trim)
            .any(|c| !c.eq_ignore_ascii_case("chunked"))
        {
            return Err(RouteError::Refused {
                status: http::StatusCode::NOT_IMPLEMENTED,
                message: format!("Transfer-Encoding: {codings}: only chunked can be passed on"),
            });
        }
    }
    Ok(())
}

/// `host[:port]`: a reg-name, IPv4 or bracketed IPv6 literal, and an
/// optional port; no userinfo, path, or spaces.
pub(super) fn is_host(v: &[u8]) -> bool {
    let (host, port) = match v.iter().rposition(|&b| b == b':') {
        Some(i) if !v.starts_with(b"[") || v[..i].ends_with(b"]") => (&v[..i], Some(&v[i + 1..])),
        _ => (v, None),
    };
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    let host_ok = if let Some(inner) = host.strip_prefix(b"[") {
        inner.strip_suffix(b"]").is_some_and(|ip| {
            ip.iter()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(b))
        })
    } else {
        host.iter().all(|&b| REG_NAME[usize::from(b)])
    };
    port_ok && host_ok
}

/// The bytes of a reg-name (RFC 3986 §3.2.2: unreserved, sub-delims and
/// `%`), by value: every request's `Host` is checked a byte at a time.
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"-._~!$&'()*+,;=%";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_a_reg_name_or_an_ip_literal_with_an_optional_port() {
        for b in 0..=255u8 {
            let reg = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b);
            assert_eq!(REG_NAME[usize::from(b)], reg, "byte {b}");
        }
        for ok in [
            &b"web"[..],
            b"web.service.dc1.consul:8080",
            b"127.0.0.1:41234",
            b"[::1]:80",
            b"a%20b",
            b"",
        ] {
            assert!(is_host(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"a b"[..],
            b"user@host",
            b"host/path",
            b"web:123456",
            b"web:8o",
            b"[::1",
            b"h\x80",
        ] {
            assert!(!is_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
