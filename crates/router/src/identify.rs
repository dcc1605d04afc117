//! Identifiers: from an HTTP request to a logical name (`/svc/hello`).

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderName, Method, Request, Uri, Version};
use strait_dtab::Path;

/// One of Linkerd 1's HTTP identifiers.
#[derive(Clone, Debug)]
pub enum Identifier {
    /// `io.l5d.header.token`: the header's value, verbatim, as one element.
    HeaderToken {
        /// The header (default `Host`).
        header: HeaderName,
    },
    /// `io.l5d.methodAndHost`: `/1.1/<METHOD>/<host>[/<uri path>]`.
    MethodAndHost {
        /// Append the URI's path segments.
        uri_in_dst: bool,
    },
    /// `io.l5d.path`: the first `segments` segments of the URI path.
    Path {
        /// How many segments name the service.
        segments: usize,
        /// Strip them from the URI before forwarding.
        consume: bool,
    },
    /// `io.l5d.header`: the header's value parsed as a path.
    Header {
        /// The header (default `l5d-name`).
        header: HeaderName,
    },
    /// `io.l5d.static`: always this path.
    Static {
        /// The path appended to the prefix.
        path: Path,
    },
}

/// A successful identification.
#[derive(Debug)]
pub struct Identified {
    /// `dstPrefix ++ name`.
    pub dst: Path,
    /// The URI to forward instead of the request's (`io.l5d.path` with
    /// `consume`).
    pub uri: Option<Uri>,
}

impl Identifier {
    /// Names `req`, or says why it cannot.
    pub fn identify<B>(&self, prefix: &Path, req: &Request<B>) -> Result<Identified, String> {
        let dst = |p: Path| Identified {
            dst: prefix.concat(&p),
            uri: None,
        };
        match self {
            Identifier::HeaderToken { header } => {
                let value = header_value(req, header)?;
                let mut p = Path::empty();
                p.push(Bytes::copy_from_slice(value));
                Ok(dst(p))
            }
            Identifier::MethodAndHost { uri_in_dst } => {
                let mut p = Path::empty();
                let version = match req.version() {
                    Version::HTTP_10 => "1.0",
                    _ => "1.1",
                };
                p.push(Bytes::from_static(version.as_bytes()));
                p.push(Bytes::copy_from_slice(req.method().as_str().as_bytes()));
                if version == "1.1" {
                    let host = req
                        .headers()
                        .get(HOST)
                        .map(|v| v.as_bytes())
                        .unwrap_or_default();
                    if host.is_empty() {
                        return Err("HTTP/1.1 request missing hostname".to_owned());
                    }
                    p.push(Bytes::from(host.to_ascii_lowercase()));
                }
                if *uri_in_dst {
                    for seg in req.uri().path().split('/').filter(|s| !s.is_empty()) {
                        p.push(Bytes::copy_from_slice(seg.as_bytes()));
                    }
                }
                Ok(dst(p))
            }
            Identifier::Path { segments, consume } => {
                let path = req.uri().path();
                let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
                if segs.len() < *segments {
                    return Err(format!(
                        "Unable to identify request: the path {path} has fewer than {segments} segments"
                    ));
                }
                let mut p = Path::empty();
                for s in &segs[..*segments] {
                    p.push(Bytes::copy_from_slice(s.as_bytes()));
                }
                let uri = if *consume {
                    let rest = segs[*segments..].join("/");
                    let trailing = if path.ends_with('/') && !rest.is_empty() {
                        "/"
                    } else {
                        ""
                    };
                    let q = req
                        .uri()
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    format!("/{rest}{trailing}{q}").parse::<Uri>().ok()
                } else {
                    None
                };
                Ok(Identified {
                    dst: prefix.concat(&p),
                    uri,
                })
            }
            Identifier::Header { header } => {
                let value = header_value(req, header)?;
                let text = std::str::from_utf8(value)
                    .map_err(|_| format!("{header} header is not UTF-8"))?;
                let p = Path::read(text).map_err(|e| e.to_string())?;
                Ok(dst(p))
            }
            Identifier::Static { path } => Ok(dst(path.clone())),
        }
    }
}

/// The header's value; missing or empty is Linkerd's "`<header>` header is
/// absent".
fn header_value<'r, B>(req: &'r Request<B>, header: &HeaderName) -> Result<&'r [u8], String> {
    match req.headers().get(header).map(|v| v.as_bytes()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ if header == HOST => Err("Host header is absent".to_owned()),
        _ => Err(format!("{header} header is absent")),
    }
}

/// Whether the request is `CONNECT` (which Strait does not tunnel).
pub fn is_connect<B>(req: &Request<B>) -> bool {
    req.method() == Method::CONNECT
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn svc() -> Path {
        Path::read("/svc").unwrap()
    }

    #[test]
    fn header_token_copies_the_host_verbatim_as_one_element() {
        let id = Identifier::HeaderToken { header: HOST };
        let r = id
            .identify(&svc(), &req("GET", "/", &[("host", "Hello:8080")]))
            .unwrap();
        assert_eq!(
            r.dst.show(),
            "/svc/Hello:8080",
            "no lower-casing, no port stripping"
        );
        let err = id.identify(&svc(), &req("GET", "/", &[])).unwrap_err();
        assert_eq!(err, "Host header is absent");
    }

    #[test]
    fn method_and_host_lowercases_the_host_and_can_append_the_uri() {
        let id = Identifier::MethodAndHost { uri_in_dst: true };
        let r = id
            .identify(&svc(), &req("POST", "/a/b", &[("host", "Web")]))
            .unwrap();
        assert_eq!(r.dst.show(), "/svc/1.1/POST/web/a/b");
    }

    #[test]
    fn path_identifier_takes_segments_and_can_consume_them() {
        let id = Identifier::Path {
            segments: 1,
            consume: true,
        };
        let r = id
            .identify(&svc(), &req("GET", "/users/42?x=1", &[]))
            .unwrap();
        assert_eq!(r.dst.show(), "/svc/users");
        assert_eq!(
            r.uri.unwrap().to_string(),
            "/42?x=1",
            "consumed segments are stripped, the query kept"
        );
        assert!(id.identify(&svc(), &req("GET", "/", &[])).is_err());
    }

    #[test]
    fn header_identifier_parses_a_path() {
        let id = Identifier::Header {
            header: HeaderName::from_static("l5d-name"),
        };
        let r = id
            .identify(&svc(), &req("GET", "/", &[("l5d-name", "/a/b")]))
            .unwrap();
        assert_eq!(r.dst.show(), "/svc/a/b");
        assert!(
            id.identify(&svc(), &req("GET", "/", &[("l5d-name", "nope")]))
                .is_err()
        );
    }
}
