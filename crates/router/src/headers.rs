//! Linkerd's context headers (`l5d-*`), `Forwarded`, and the `Host`
//! rewriting of `setHost`: what any protocol's router writes. HTTP/1's
//! own framing rules (hop-by-hop headers, `Via`, absolute-form) are in
//! [`crate::http1`].

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use strait_dtab::{Dtab, Path};

const L5D_DTAB: HeaderName = HeaderName::from_static("l5d-dtab");
const L5D_CTX_DTAB: HeaderName = HeaderName::from_static("l5d-ctx-dtab");
const L5D_DST_SERVICE: HeaderName = HeaderName::from_static("l5d-dst-service");
const L5D_DST_CLIENT: HeaderName = HeaderName::from_static("l5d-dst-client");
const L5D_DST_RESIDUAL: HeaderName = HeaderName::from_static("l5d-dst-residual");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Removes every `l5d-*` header (`clearContext`).
pub fn strip_l5d(h: &mut HeaderMap) {
    let names: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("l5d-"))
        .cloned()
        .collect();
    for n in names {
        h.remove(n);
    }
}

/// Removes `l5d-dtab` and `l5d-ctx-dtab` unread: a server that does not
/// accept dtab overrides (`dtabOverride` off) ignores them, and they are
/// not passed on.
pub fn drop_local_dtab(h: &mut HeaderMap) {
    h.remove(L5D_CTX_DTAB);
    h.remove(L5D_DTAB);
}

/// A request's local dtab: `l5d-ctx-dtab` then `l5d-dtab`, parsed, and its
/// canonical text (the binding cache's key, and the `l5d-ctx-dtab` sent on).
#[derive(Clone, Debug)]
pub struct LocalDtab {
    /// The canonical text.
    pub text: Arc<str>,
    /// The parsed entries.
    pub dtab: Dtab,
}

/// The default cap on `l5d-ctx-dtab` and `l5d-dtab` together, in bytes
/// (`bindingLimits.maxDtabHeaderBytes`): dozens of dentries, more than a
/// per-request override needs, and half of the default `maxHeadersKB`.
pub const DEFAULT_MAX_DTAB_HEADER_BYTES: usize = 4096;

/// [`take_local_dtab_within`] with the default cap,
/// [`DEFAULT_MAX_DTAB_HEADER_BYTES`].
pub fn take_local_dtab(h: &mut HeaderMap) -> Result<Option<LocalDtab>, String> {
    take_local_dtab_within(h, DEFAULT_MAX_DTAB_HEADER_BYTES)
}

/// Takes `l5d-ctx-dtab` then `l5d-dtab` off the request (each possibly
/// repeated) and parses them into the local dtab, `l5d-dtab` last so the
/// user's entries win. `None` when neither is present; a parse error is the
/// parser's message (a 400), and so is more than `max_bytes` of header
/// values in all (checked before anything is parsed).
pub fn take_local_dtab_within(
    h: &mut HeaderMap,
    max_bytes: usize,
) -> Result<Option<LocalDtab>, String> {
    if !h.contains_key(&L5D_CTX_DTAB) && !h.contains_key(&L5D_DTAB) {
        return Ok(None);
    }
    let size: usize = [L5D_CTX_DTAB, L5D_DTAB]
        .iter()
        .flat_map(|name| h.get_all(name))
        .map(|v| v.len())
        .sum();
    if size > max_bytes {
        return Err(format!(
            "l5d-dtab and l5d-ctx-dtab: {size} bytes, more than the {max_bytes} allowed \
             (bindingLimits.maxDtabHeaderBytes)"
        ));
    }
    let mut dtab = Dtab::empty();
    for name in [L5D_CTX_DTAB, L5D_DTAB] {
        for v in h.get_all(&name) {
            let text = v
                .to_str()
                .map_err(|_| format!("{name}: not a visible ASCII header value"))?;
            dtab = dtab.concat(&Dtab::read(text).map_err(|e| e.to_string())?);
        }
        h.remove(&name);
    }
    if dtab.is_empty() {
        return Ok(None);
    }
    Ok(Some(LocalDtab {
        text: Arc::from(dtab.show()),
        dtab,
    }))
}

/// Sets the informational headers Linkerd adds downstream
/// (`l5d-dst-service`, `l5d-dst-client`, `l5d-dst-residual`) and re-emits
/// the local dtab as `l5d-ctx-dtab`. The service and client values are
/// made once per service and client, not per request. `l5d-reqid` and
/// `l5d-ctx-trace` are the trace's ([`crate::trace::Trace::write`]).
pub fn set_l5d(
    h: &mut HeaderMap,
    service: Option<&HeaderValue>,
    client: Option<&HeaderValue>,
    residual: &Path,
    local: Option<&str>,
) {
    let set = |h: &mut HeaderMap, n: HeaderName, v: Option<&HeaderValue>| match v {
        Some(v) => {
            h.insert(n, v.clone());
        }
        None => {
            h.remove(n);
        }
    };
    set(h, L5D_DST_SERVICE, service);
    set(h, L5D_DST_CLIENT, client);
    if residual.is_empty() {
        h.remove(L5D_DST_RESIDUAL);
    } else {
        set(
            h,
            L5D_DST_RESIDUAL,
            HeaderValue::from_str(&residual.show()).ok().as_ref(),
        );
    }
    match local {
        Some(l) => set(h, L5D_CTX_DTAB, HeaderValue::from_str(l).ok().as_ref()),
        None => {
            h.remove(L5D_CTX_DTAB);
        }
    }
}

/// Removes the request's own `l5d-dst-*`, `l5d-ctx-dtab` and `l5d-reqid`
/// (the HTTP/1 client writes this hop's as header lines with
/// [`write_l5d_lines`] and [`crate::trace::Trace::write_lines`]). One pass
/// over the names finds whether any is there (usually none).
pub fn strip_own_l5d(h: &mut HeaderMap) {
    const NAMES: [HeaderName; 5] = [
        L5D_DST_SERVICE,
        L5D_DST_CLIENT,
        L5D_DST_RESIDUAL,
        L5D_CTX_DTAB,
        HeaderName::from_static("l5d-reqid"),
    ];
    if h.keys().any(|k| NAMES.contains(k)) {
        for n in NAMES {
            h.remove(n);
        }
    }
}

/// What [`set_l5d`] sets, as header lines appended to `buf`.
pub fn write_l5d_lines(
    buf: &mut Vec<u8>,
    service: Option<&HeaderValue>,
    client: Option<&HeaderValue>,
    residual: Option<&HeaderValue>,
    local: Option<&HeaderValue>,
) {
    for (name, v) in [
        (L5D_DST_SERVICE, service),
        (L5D_DST_CLIENT, client),
        (L5D_DST_RESIDUAL, residual),
        (L5D_CTX_DTAB, local),
    ] {
        if let Some(v) = v {
            buf.extend_from_slice(name.as_str().as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(v.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }
}

/// Points `Location` and `Refresh` back at the host the caller asked for
/// after the request's `Host` was rewritten to `new` (Consul's `setHost`,
/// as Linkerd 1's `RewriteHostHeader` does).
pub fn restore_host(h: &mut HeaderMap, new: &HeaderValue, original: &HeaderValue) {
    let (Ok(new), Ok(original)) = (new.to_str(), original.to_str()) else {
        return;
    };
    let (from, to) = (format!("://{new}"), format!("://{original}"));
    for name in [http::header::LOCATION, http::header::REFRESH] {
        let Some(v) = h.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if v.contains(&from)
            && let Ok(v) = HeaderValue::from_str(&v.replace(&from, &to))
        {
            h.insert(name, v);
        }
    }
}

/// Appends an RFC 7239 `Forwarded` element: `by` the server, `for` the
/// client, `host` and `proto`.
pub fn add_forwarded(h: &mut HeaderMap, remote: SocketAddr, local: SocketAddr) {
    let node = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!("\"{a}\""),
        SocketAddr::V6(a) => format!("\"[{}]:{}\"", a.ip(), a.port()),
    };
    let mut v = format!("by={};for={}", node(local), node(remote));
    if let Some(host) = h.get(HOST).and_then(|h| h.to_str().ok()) {
        v.push_str(&format!(";host=\"{host}\""));
    }
    v.push_str(";proto=http");
    if let Ok(v) = HeaderValue::from_str(&v) {
        h.append(FORWARDED, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redirects_point_back_at_the_original_host() {
        let mut h = HeaderMap::new();
        h.insert(
            "location",
            HeaderValue::from_static("http://web.service.dc1.consul/next"),
        );
        h.insert(
            "refresh",
            HeaderValue::from_static("5; url=http://web.service.dc1.consul:80/x"),
        );
        let new = HeaderValue::from_static("web.service.dc1.consul");
        restore_host(&mut h, &new, &HeaderValue::from_static("web"));
        assert_eq!(h["location"], "http://web/next");
        assert_eq!(h["refresh"], "5; url=http://web:80/x");
        let mut h = HeaderMap::new();
        h.insert("location", HeaderValue::from_static("/relative"));
        restore_host(&mut h, &new, &HeaderValue::from_static("web"));
        assert_eq!(h["location"], "/relative");
    }

    #[test]
    fn local_dtab_puts_user_entries_after_context_entries() {
        let mut h = HeaderMap::new();
        h.insert("l5d-dtab", HeaderValue::from_static("/svc=>/user"));
        h.insert("l5d-ctx-dtab", HeaderValue::from_static("/svc=>/ctx"));
        let LocalDtab { text: s, dtab: d } = take_local_dtab(&mut h).unwrap().unwrap();
        assert_eq!(&*s, "/svc=>/ctx;/svc=>/user");
        assert_eq!(d.len(), 2);
        assert!(h.is_empty(), "both headers are taken off the request");
        let mut h = HeaderMap::new();
        h.insert("l5d-dtab", HeaderValue::from_static("/svc=>"));
        assert!(
            take_local_dtab(&mut h)
                .unwrap_err()
                .contains("expected but")
        );
    }

    #[test]
    fn local_dtab_headers_over_the_cap_are_refused_before_parsing() {
        let dentry = "/svc=>/a;";
        let mut h = HeaderMap::new();
        h.insert("l5d-ctx-dtab", HeaderValue::from_static("/svc=>/ctx"));
        let user = dentry.repeat(4086 / dentry.len());
        h.insert("l5d-dtab", HeaderValue::from_str(&user).unwrap());
        let total = 10 + user.len();
        assert!(total <= 4096);
        assert!(
            take_local_dtab(&mut h).unwrap().is_some(),
            "{total} bytes pass"
        );
        let mut h = HeaderMap::new();
        h.append("l5d-dtab", HeaderValue::from_str(&user).unwrap());
        h.append("l5d-dtab", HeaderValue::from_static("/x=>/y"));
        let err = take_local_dtab_within(&mut h, user.len() + 5).unwrap_err();
        assert_eq!(
            err,
            format!(
                "l5d-dtab and l5d-ctx-dtab: {} bytes, more than the {} allowed \
                 (bindingLimits.maxDtabHeaderBytes)",
                user.len() + 6,
                user.len() + 5
            ),
            "repeated headers count together"
        );
    }
}
