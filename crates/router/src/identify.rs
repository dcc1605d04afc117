//! Identifiers: from an HTTP request to a logical name (`/svc/hello`).

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderName, Method, Request, Uri, Version};
use strait_dtab::Path;

use crate::body::Opaque;

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
    /// The h2 router's `io.l5d.header.token`: the field's value, verbatim,
    /// as one element (default `:authority`).
    Token {
        /// The header or pseudo-header.
        field: Field,
    },
    /// The h2 router's `io.l5d.header.path`: the field's value (default
    /// `:path`) cut at `?` and at one trailing `/`, its first `segments`
    /// segments (all when `None`). Segments are taken as bytes, so a
    /// gRPC `:path` (`/pkg.Service/Method`) needs no escaping.
    HeaderPath {
        /// The header or pseudo-header.
        field: Field,
        /// How many segments name the service (`None`: all).
        segments: Option<usize>,
    },
}

/// A request header, or one of HTTP/2's pseudo-headers (which hyper keeps
/// in the URI and method, not among the headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// `:authority` (or `Host`, for an HTTP/1 request).
    Authority,
    /// `:path`: path and query.
    Path,
    /// `:method`.
    Method,
    /// `:scheme`.
    Scheme,
    /// A header, by its lower-case name.
    Header(HeaderName),
}

impl Field {
    /// The field named `name` (case-insensitive: h2 header names are lower
    /// case, so Linkerd's `header: My-Header`, which never matched there,
    /// matches here).
    pub fn parse(name: &str) -> Result<Field, String> {
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_str() {
            ":authority" => Field::Authority,
            ":path" => Field::Path,
            ":method" => Field::Method,
            ":scheme" => Field::Scheme,
            p if p.starts_with(':') => {
                return Err(format!(
                    "unknown pseudo-header '{name}'; HTTP/2's are :authority, :path, :method, :scheme"
                ));
            }
            _ => Field::Header(
                HeaderName::from_bytes(lower.as_bytes())
                    .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?,
            ),
        })
    }

    /// Its name as Linkerd writes it (`:authority`, `l5d-name`).
    pub fn name(&self) -> &str {
        match self {
            Field::Authority => ":authority",
            Field::Path => ":path",
            Field::Method => ":method",
            Field::Scheme => ":scheme",
            Field::Header(h) => h.as_str(),
        }
    }

    /// Its value in `req`, if present and not empty.
    pub fn value<'r, B: Opaque>(&self, req: &'r Request<B>) -> Option<&'r [u8]> {
        let v = match self {
            Field::Authority => match req.uri().authority() {
                Some(a) => a.as_str().as_bytes(),
                None => header(req, &HOST)?,
            },
            Field::Path => req.uri().path_and_query()?.as_str().as_bytes(),
            Field::Method => req.method().as_str().as_bytes(),
            Field::Scheme => req.uri().scheme_str()?.as_bytes(),
            Field::Header(h) => header(req, h)?,
        };
        (!v.is_empty()).then_some(v)
    }
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
    pub fn identify<B: Opaque>(
        &self,
        prefix: &Path,
        req: &Request<B>,
    ) -> Result<Identified, String> {
        let dst = |p: Path| Identified {
            dst: prefix.concat(&p),
            uri: None,
        };
        match self {
            Identifier::HeaderToken { header } => {
                let value = header_value(req, header)?;
                Ok(Identified {
                    dst: prefix.join(Bytes::copy_from_slice(value)),
                    uri: None,
                })
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
                    let host = header(req, &HOST).unwrap_or_default();
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
            Identifier::Token { field } => {
                let value = field
                    .value(req)
                    .ok_or_else(|| format!("missing header: '{}'", field.name()))?;
                Ok(Identified {
                    dst: prefix.join(Bytes::copy_from_slice(value)),
                    uri: None,
                })
            }
            Identifier::HeaderPath { field, segments } => {
                let value = field.value(req).unwrap_or_default();
                let value = value.split(|&b| b == b'?').next().unwrap_or_default();
                let value = value.strip_suffix(b"/").unwrap_or(value);
                let mut p = Path::empty();
                for seg in value.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
                    if segments.is_some_and(|n| p.len() >= n) {
                        break;
                    }
                    p.push(Bytes::copy_from_slice(seg));
                }
                match segments {
                    Some(n) if p.len() < *n => Err(format!(
                        "Path must have at least {n} segment{}",
                        if *n == 1 { "" } else { "s" }
                    )),
                    None if p.is_empty() => Err("Missing destination path".to_owned()),
                    _ => Ok(dst(p)),
                }
            }
        }
    }
}

/// The header's value; missing or empty is Linkerd's "`<header>` header is
/// absent".
fn header_value<'r, B: Opaque>(
    req: &'r Request<B>,
    header: &HeaderName,
) -> Result<&'r [u8], String> {
    match self::header(req, header) {
        Some(v) if !v.is_empty() => Ok(v),
        _ if header == HOST => Err("Host header is absent".to_owned()),
        _ => Err(format!("{header} header is absent")),
    }
}

/// The first value of `name`: in the map, else among the fields the
/// request's HTTP/1 server passed on as written (`Host`, most often).
pub(crate) fn header<'r, B: Opaque>(req: &'r Request<B>, name: &HeaderName) -> Option<&'r [u8]> {
    if name == HOST
        && let Some(host) = req.body().passed_host()
    {
        return Some(host);
    }
    match req.headers().get(name) {
        Some(v) => Some(v.as_bytes()),
        None => crate::http1::field(req.body().opaque_fields(), name.as_str().as_bytes()),
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
    fn a_host_passed_on_as_written_is_found() {
        // As Strait's HTTP/1 server hands a request over: `Host` among the
        // fields outside the map.
        let block = Bytes::from_static(b"Accept: */*\r\nHost: Web:8080\r\n");
        let mut r = Request::new(crate::body::RequestBody::Empty(
            crate::http1::seen::Seen::ALL,
            block,
        ));
        *r.uri_mut() = "/a".parse().unwrap();
        let host = Identifier::HeaderToken { header: HOST };
        assert_eq!(
            host.identify(&svc(), &r).unwrap().dst.show(),
            "/svc/Web:8080"
        );
        let mh = Identifier::MethodAndHost { uri_in_dst: false };
        assert_eq!(
            mh.identify(&svc(), &r).unwrap().dst.show(),
            "/svc/1.1/GET/web:8080"
        );
        assert_eq!(Field::Authority.value(&r), Some(&b"Web:8080"[..]));
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
    fn h2_token_reads_the_authority_and_path_takes_grpc_service_names() {
        let token = Identifier::Token {
            field: Field::parse(":authority").unwrap(),
        };
        let r = token
            .identify(&svc(), &req("POST", "http://greeter:50051/x", &[]))
            .unwrap();
        assert_eq!(r.dst.show(), "/svc/greeter:50051");
        let err = token.identify(&svc(), &req("GET", "/", &[])).unwrap_err();
        assert_eq!(err, "missing header: ':authority'");

        let path = Identifier::HeaderPath {
            field: Field::Path,
            segments: Some(1),
        };
        let r = path
            .identify(&svc(), &req("POST", "/helloworld.Greeter/SayHello", &[]))
            .unwrap();
        assert_eq!(r.dst.show(), "/svc/helloworld.Greeter");
        let err = path.identify(&svc(), &req("POST", "/", &[])).unwrap_err();
        assert_eq!(err, "Path must have at least 1 segment");
        let all = Identifier::HeaderPath {
            field: Field::Path,
            segments: None,
        };
        let r = all.identify(&svc(), &req("GET", "/a/b/?q=1", &[])).unwrap();
        assert_eq!(r.dst.show(), "/svc/a/b", "query and one trailing / cut");
        let err = all.identify(&svc(), &req("GET", "/", &[])).unwrap_err();
        assert_eq!(err, "Missing destination path");
        let named = Identifier::Token {
            field: Field::parse("My-Header").unwrap(),
        };
        let r = named
            .identify(&svc(), &req("GET", "/", &[("my-header", "x")]))
            .unwrap();
        assert_eq!(r.dst.show(), "/svc/x", "configured names are lower-cased");
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
