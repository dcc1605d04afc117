//! The system namers under `/$/` (Finagle's `Namer.global` plus Linkerd 1's
//! `io.buoyant.*` namers).
//!
//! [`lookup`] answers one lookup the way Linkerd 1's
//! `ConfiguredNamersInterpreter` does once its dtab and configured namers
//! have nothing to say: it asks Finagle's `Namer.global`, and rewords a
//! missing namer class as `Unknown namer: <name> for path: <path>`.
//!
//! # The rules, in the order Finagle tries them
//!
//! 1. `/$/inet/<host>/<port>/rest…` (or `/$/fixedinet/…`) with `<port>` an
//!    `Int` → a bound name, id `/$/inet/<host>/<port>`, residual `/rest…`.
//! 2. `/$/inet/<port>/rest…` → the same with an empty host. Form 1 is tried
//!    first, so `/$/inet/1234/5678` is host `1234`, port 5678.
//! 3. `/$/fail…` → `Fail`; 4. `/$/nil…` → `Empty` (element-wise prefixes).
//! 5. `/$/<class>/rest…` → the namer class `<class>` looks up `/rest…`:
//!    `io.buoyant.rinet`, `io.buoyant.{hostport,porthost}Pfx`,
//!    `io.buoyant.http.{anyMethod,anyHost,subdomainOf,domainToPath}[Pfx]`
//!    and `com.twitter.finagle.namer.global`; any other name fails as an
//!    unknown namer (this includes `/$/inet` without a numeric port).
//! 6. Anything else (`/#/…`, `/$` alone, …) → `Neg`.
//!
//! # Quirks kept on purpose
//!
//! * Finagle's `Path.Utf8` extractor never fails: it decodes each element
//!   with Java's UTF-8 decoder, replacing malformed bytes by U+FFFD. So a
//!   non-UTF-8 element does not make a path `Neg`: `/$/\xff` is an unknown
//!   namer named `\u{fffd}`, and a residual (and everything a class namer
//!   sees) is re-encoded from the decoded text. Bound ids keep the original
//!   bytes (`java_utf8` below reproduces Java's replacement rules).
//! * Ports parse as Java's `Integer.parseInt`: an optional `+`/`-`, then
//!   decimal digits, which may be any Unicode decimal digit of the Basic
//!   Multilingual Plane (`٨٠` is 80). The id keeps the digits as written.
//! * The host and port are handed to Finagle's inet resolver as the string
//!   `host:port`, which splits it on spaces, commas and colons. So an IPv6
//!   literal (`/$/inet/::1/80`) fails with `requirement failed: You must
//!   specify host and port in hosts: ::1:80`, and `/$/inet/\x20a/80` means
//!   host `a`.
//! * Finagle reports a bad address (`port out of range:70000`, a rinet port
//!   that is not a number, an unsplittable `host:port`) as a failed address
//!   behind a successfully bound name; [`InetAddr`] cannot carry a failure,
//!   so such lookups answer [`State::Failed`] with the same message.
//! * Rewriting namers that would build a path with an empty element (the
//!   empty host of `hostportPfx/pfx/:80`, `domainToPath/a..b`) throw Scala's
//!   `requirement failed` in Linkerd; here that is [`State::Failed`] too.

use std::borrow::Cow;

use bytes::Bytes;

use crate::{Bound, Name, NameTree, Path, State};

/// The address a system namer binds: a host and a port. Resolving the host
/// is the caller's business.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InetAddr {
    /// Host name or IP literal. Empty for `/$/inet/<port>`, which Finagle's
    /// DNS resolver answers with the loopback address (older Finagle bound
    /// the wildcard address instead).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `/$/fixedinet`: resolve once and never again.
    pub fixed: bool,
}

/// One lookup of `path` in the system namers.
///
/// See the [module documentation](self) for the rules. A missing namer
/// class fails with Linkerd's `Unknown namer: <class> for path: <path>`,
/// where `<path>` is the whole path given here, as shown by [`Path::show`].
pub fn lookup(path: &Path) -> State<NameTree<Name<InetAddr>>> {
    match global(path) {
        Ok(tree) => State::Ok(tree),
        Err(Failure::UnknownNamer(class)) => {
            State::Failed(format!("Unknown namer: {class} for path: {path}"))
        }
        Err(Failure::Failed(message)) => State::Failed(message),
    }
}

/// Decodes bytes as Java's `new String(bytes, "UTF-8")` does (and so
/// Finagle's `Path.Utf8` extractor): malformed input becomes U+FFFD.
///
/// This equals [`String::from_utf8_lossy`] except for an encoded surrogate
/// (`ED A0..BF` and an optional continuation byte), which Java replaces by
/// one U+FFFD where Rust uses one per byte.
fn java_utf8(mut bytes: &[u8]) -> Cow<'_, str> {
    let first = match std::str::from_utf8(bytes) {
        Ok(s) => return Cow::Borrowed(s),
        Err(e) => e,
    };
    let mut out = String::with_capacity(bytes.len() + 2);
    let mut error = first;
    loop {
        let (valid, rest) = bytes.split_at(error.valid_up_to());
        out.push_str(&String::from_utf8_lossy(valid));
        out.push('\u{fffd}');
        let skip = match rest {
            [0xED, 0xA0..=0xBF, b, ..] if b & 0xC0 == 0x80 => 3,
            [0xED, 0xA0..=0xBF, ..] => 2,
            _ => error.error_len().unwrap_or(rest.len()),
        };
        bytes = &rest[skip.min(rest.len())..];
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return Cow::Owned(out);
            }
            Err(e) => error = e,
        }
    }
}

/// How a lookup failed.
#[derive(Debug)]
enum Failure {
    /// `Class.forName` found no class of this name; Linkerd rewords this
    /// with the whole path.
    UnknownNamer(String),
    /// Any other failure, with its message.
    Failed(String),
}

/// What a lookup answers.
type Lookup = Result<NameTree<Name<InetAddr>>, Failure>;

/// `Namer.global.lookup`, before Linkerd's rewording.
fn global(path: &Path) -> Lookup {
    let decoded: Vec<Cow<'_, str>> = path.elems().iter().map(|e| java_utf8(e)).collect();
    let elems: Vec<&str> = decoded.iter().map(|e| e.as_ref()).collect();

    if let Some(found) = inet_path(path, &elems) {
        return found;
    }
    if path.starts_with(&Path::utf8(&["$", "fail"])) {
        return Ok(NameTree::Fail);
    }
    if path.starts_with(&Path::utf8(&["$", "nil"])) {
        return Ok(NameTree::Empty);
    }
    match elems.as_slice() {
        ["$", class, rest @ ..] => class_namer(class, rest),
        _ => Ok(NameTree::Neg),
    }
}

/// Finagle's `InetPath`: `/$/{inet,fixedinet}/<host>/<port>/…`, else
/// `/$/{inet,fixedinet}/<port>/…`; `None` when neither form matches.
fn inet_path(path: &Path, elems: &[&str]) -> Option<Lookup> {
    let [dollar, scheme, after @ ..] = elems else {
        return None;
    };
    if *dollar != "$" || !matches!(*scheme, "inet" | "fixedinet") {
        return None;
    }
    let host_then_port = match after {
        [host, port, residual @ ..] => java_parse_int(port).map(|port| (*host, port, residual)),
        _ => None,
    };
    let (host, port, residual) = host_then_port.or_else(|| match after {
        [port, residual @ ..] => java_parse_int(port).map(|port| ("", port, residual)),
        _ => None,
    })?;
    Some(bound_inet(path, scheme, host, port, residual))
}

/// The bound name for an inet path: the id is the path minus the residual,
/// with the original bytes; the residual is re-encoded from its text.
fn bound_inet(path: &Path, scheme: &str, host: &str, port: i32, residual: &[&str]) -> Lookup {
    let residual = utf8_path(residual.iter().copied())?;
    let id = path.take(path.len() - residual.len());
    let addr = inet_bind(&format!("{host}:{port}"), scheme == "fixedinet")?;
    Ok(bound_leaf(id, residual, addr))
}

/// A leaf holding a bound name.
fn bound_leaf(id: Path, residual: Path, addr: InetAddr) -> NameTree<Name<InetAddr>> {
    NameTree::Leaf(Name::Bound(Bound::new(id, residual, addr)))
}

/// Finagle's `InetResolver.bind` on `hosts` (`host:port`), for the one
/// address Strait supports per name.
fn inet_bind(hosts: &str, fixed: bool) -> Result<InetAddr, Failure> {
    match parse_host_ports(hosts)?.as_slice() {
        [(host, port)] => {
            let port = u16::try_from(*port)
                .map_err(|_| Failure::Failed(format!("port out of range:{port}")))?;
            Ok(InetAddr {
                host: host.clone(),
                port,
                fixed,
            })
        }
        _ => Err(Failure::Failed(format!(
            "several host:port pairs in one inet name are not supported: {hosts}"
        ))),
    }
}

/// Finagle's `InetSocketAddressUtil.parseHostPorts`: entries separated by
/// spaces or commas, each `host:port` with a port that is an `Int` or `*`
/// (port 0).
fn parse_host_ports(hosts: &str) -> Result<Vec<(String, i32)>, Failure> {
    hosts
        .split([' ', ','])
        .filter(|entry| !entry.is_empty())
        .map(|entry| match java_split(entry, ':').as_slice() {
            [host, "*"] => Ok(((*host).to_owned(), 0)),
            [host, port] => java_parse_int(port)
                .map(|port| ((*host).to_owned(), port))
                .ok_or_else(|| Failure::Failed(format!("For input string: \"{port}\""))),
            _ => Err(Failure::Failed(format!(
                "requirement failed: You must specify host and port in hosts: {hosts}"
            ))),
        })
        .collect()
}

/// `Class.forName(class).newInstance().lookup(rest)` for the namer classes
/// a Linkerd 1 process has.
fn class_namer(class: &str, rest: &[&str]) -> Lookup {
    match class {
        "io.buoyant.rinet" => rinet(rest),
        "io.buoyant.hostportPfx" => rewrite(rest, |p| host_port_pfx(p, false)),
        "io.buoyant.porthostPfx" => rewrite(rest, |p| host_port_pfx(p, true)),
        "io.buoyant.http.anyMethod" => rewrite(rest, any_method),
        "io.buoyant.http.anyMethodPfx" => rewrite(rest, any_method_pfx),
        "io.buoyant.http.anyHost" => rewrite(rest, any_host),
        "io.buoyant.http.anyHostPfx" => rewrite(rest, any_host_pfx),
        "io.buoyant.http.subdomainOf" => rewrite(rest, subdomain_of),
        "io.buoyant.http.subdomainOfPfx" => rewrite(rest, subdomain_of_pfx),
        "io.buoyant.http.domainToPath" => rewrite(rest, domain_to_path),
        "io.buoyant.http.domainToPathPfx" => rewrite(rest, domain_to_path_pfx),
        // Finagle's `com.twitter.finagle.namer.global` delegates to
        // `Namer.global` itself.
        "com.twitter.finagle.namer.global" => global(&utf8_path(rest.iter().copied())?),
        _ => Err(Failure::UnknownNamer(class.to_owned())),
    }
}

/// `io.buoyant.rinet`: `/<port>/<host>/rest…` is `/$/inet/<host>/<port>`
/// with id `/$/io.buoyant.rinet/<port>/<host>` and residual `/rest…`.
///
/// The id is built by *parsing* the text `/<port>/<host>` as a path, as
/// Linkerd does, so a host that is not valid path syntax fails the lookup
/// with the parser's message. The port is not checked before resolution:
/// `*` means 0, and a non-number fails with Java's `For input string`.
fn rinet(rest: &[&str]) -> Lookup {
    let [port, host, residual @ ..] = rest else {
        return Ok(NameTree::Neg);
    };
    let tail = Path::read(&format!("/{port}/{host}"))
        .map_err(|e| Failure::Failed(e.message().to_owned()))?;
    let id = Path::utf8(&["$", "io.buoyant.rinet"]).concat(&tail);
    let residual = utf8_path(residual.iter().copied())?;
    let addr = inet_bind(&format!("{host}:{port}"), false)?;
    Ok(bound_leaf(id, residual, addr))
}

/// Linkerd's `RewritingNamer`: an empty path is `Neg`; otherwise the
/// rewrite's path is an unbound name, and no rewrite is `Neg`.
fn rewrite(
    path: &[&str],
    rewrite: impl FnOnce(&[&str]) -> Result<Option<Path>, Failure>,
) -> Lookup {
    if path.is_empty() {
        return Ok(NameTree::Neg);
    }
    Ok(match rewrite(path)? {
        Some(path) => NameTree::Leaf(Name::Path(path)),
        None => NameTree::Neg,
    })
}

/// `io.buoyant.hostportPfx` (`/pfx/host:port/…` → `/pfx/host/port/…`) and,
/// with `port_first`, `io.buoyant.porthostPfx` (→ `/pfx/port/host/…`).
fn host_port_pfx(path: &[&str], port_first: bool) -> Result<Option<Path>, Failure> {
    let [pfx, host_port, tail @ ..] = path else {
        return Ok(None);
    };
    let Some((host, port)) = host_colon_port(host_port) else {
        return Ok(None);
    };
    let (a, b) = if port_first {
        (port, host)
    } else {
        (host, port)
    };
    utf8_path([*pfx, a, b].into_iter().chain(tail.iter().copied())).map(Some)
}

/// Linkerd's `HostColonPort`: exactly one `:` (after Java's `split`, which
/// drops trailing empty pieces, so `h:80:` counts), and a port that is a
/// lower-case DNS label (`[a-z0-9][-a-z0-9]*`) of at most 63 characters.
/// The host may be anything, even empty.
fn host_colon_port(s: &str) -> Option<(&str, &str)> {
    match java_split(s, ':').as_slice() {
        [host, port] if is_dns_label(port) => Some((host, port)),
        _ => None,
    }
}

/// Linkerd's `DnsLabel` regex `[a-z0-9][-a-z0-9]*[a-z0-9]?`, at most 63
/// characters.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= 63
        && b.first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Linkerd's `Match.method`: `[A-Z]+`.
fn is_method(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_uppercase())
}

/// Linkerd's `Match.host`: `^[A-Za-z0-9.:_-]+$`, deliberately coarse so
/// that DNS names and IPv4/IPv6 literals, with or without a port, pass.
fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'_' | b'-'))
}

/// `io.buoyant.http.anyMethod`: `/METHOD/rest…` → `/rest…`.
fn any_method(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [method, tail @ ..] if is_method(method) => utf8_path(tail.iter().copied()).map(Some),
        _ => Ok(None),
    }
}

/// `io.buoyant.http.anyMethodPfx`: `/pfx/METHOD/rest…` → `/pfx/rest…`.
fn any_method_pfx(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [pfx, method, tail @ ..] if is_method(method) => {
            utf8_path(std::iter::once(*pfx).chain(tail.iter().copied())).map(Some)
        }
        _ => Ok(None),
    }
}

/// `io.buoyant.http.anyHost`: `/host/rest…` → `/rest…`.
fn any_host(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [host, tail @ ..] if is_host(host) => utf8_path(tail.iter().copied()).map(Some),
        _ => Ok(None),
    }
}

/// `io.buoyant.http.anyHostPfx`: `/pfx/host/rest…` → `/pfx/rest…`.
fn any_host_pfx(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [pfx, host, tail @ ..] if is_host(host) => {
            utf8_path(std::iter::once(*pfx).chain(tail.iter().copied())).map(Some)
        }
        _ => Ok(None),
    }
}

/// Linkerd's `Match.subdomain`: drop a port (from the first `:`, unless the
/// host starts with one), then strip the suffix `.domain`, case-sensitively.
/// An empty remainder is no match.
fn subdomain<'a>(domain: &str, host: &'a str) -> Option<&'a str> {
    let host = match host.find(':') {
        Some(i) if i > 0 => &host[..i],
        _ => host,
    };
    host.strip_suffix(domain)
        .and_then(|h| h.strip_suffix('.'))
        .filter(|sub| !sub.is_empty())
}

/// `io.buoyant.http.subdomainOf`: `/domain/sub.domain[:port]/rest…` →
/// `/sub/rest…`.
fn subdomain_of(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [domain, host, tail @ ..] if is_host(domain) && is_host(host) => {
            match subdomain(domain, host) {
                Some(sub) => utf8_path(std::iter::once(sub).chain(tail.iter().copied())).map(Some),
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// `io.buoyant.http.subdomainOfPfx`: `/domain/pfx/sub.domain[:port]/rest…`
/// → `/pfx/sub/rest…`.
fn subdomain_of_pfx(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [domain, pfx, host, tail @ ..] if is_host(domain) && is_host(host) => {
            match subdomain(domain, host) {
                Some(sub) => {
                    utf8_path([*pfx, sub].into_iter().chain(tail.iter().copied())).map(Some)
                }
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// `io.buoyant.http.domainToPath`: `/foo.buoyant.io/rest…` →
/// `/io/buoyant/foo/rest…` (labels reversed; a port stays on its label).
fn domain_to_path(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [host, tail @ ..] if is_host(host) => {
            let labels = java_split(host, '.');
            utf8_path(labels.into_iter().rev().chain(tail.iter().copied())).map(Some)
        }
        _ => Ok(None),
    }
}

/// `io.buoyant.http.domainToPathPfx`: `/pfx/foo.buoyant.io/rest…` →
/// `/pfx/io/buoyant/foo/rest…`.
fn domain_to_path_pfx(path: &[&str]) -> Result<Option<Path>, Failure> {
    match path {
        [pfx, host, tail @ ..] if is_host(host) => {
            let labels = java_split(host, '.');
            let elems = std::iter::once(*pfx)
                .chain(labels.into_iter().rev())
                .chain(tail.iter().copied());
            utf8_path(elems).map(Some)
        }
        _ => Ok(None),
    }
}

/// Finagle's `Path.Utf8(elems: _*)`: fails with Scala's `requirement
/// failed` when an element is empty.
fn utf8_path<'a>(elems: impl IntoIterator<Item = &'a str>) -> Result<Path, Failure> {
    Path::from_elems(
        elems
            .into_iter()
            .map(|e| Bytes::copy_from_slice(e.as_bytes())),
    )
    .ok_or_else(|| Failure::Failed("requirement failed".to_owned()))
}

/// Java's `String.split` on a one-character separator: trailing empty
/// pieces are dropped (so `":"` gives none), and a string without the
/// separator is one piece, even when empty.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut pieces: Vec<&str> = s.split(sep).collect();
    if pieces.len() > 1 {
        while pieces.last().is_some_and(|p| p.is_empty()) {
            pieces.pop();
        }
    }
    pieces
}

/// The zero of each run of Unicode decimal digits (category `Nd`) in the
/// Basic Multilingual Plane, as Java 8 (Unicode 6.2) knows them; Java's
/// `Character.digit(c, 10)` accepts exactly these runs. Java 9 and later
/// add U+0DE6 and U+A9F0.
const JAVA_DIGIT_ZEROS: [u32; 35] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xAA50, 0xABF0, 0xFF10,
];

/// Java's `Character.digit(c, 10)` for one UTF-16 unit; characters outside
/// the Basic Multilingual Plane are surrogate pairs there, never digits.
fn java_digit(c: char) -> Option<i64> {
    let c = u32::from(c);
    JAVA_DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&c))
        .map(|&zero| i64::from(c - zero))
}

/// Java's `Integer.parseInt(s)` (Scala's `s.toInt`): an optional `+` or
/// `-`, then at least one decimal digit, the value within `i32`.
fn java_parse_int(s: &str) -> Option<i32> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars() {
        value = value * 10 + java_digit(c)?;
        if value > 1 << 31 {
            return None;
        }
    }
    i32::try_from(if negative { -value } else { value }).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn path(s: &str) -> Path {
        Path::read(s).unwrap()
    }

    fn look(s: &str) -> State<NameTree<Name<InetAddr>>> {
        lookup(&path(s))
    }

    /// The bound name a lookup answered, or a panic naming what it was.
    fn bound(s: &str) -> Bound<InetAddr> {
        match look(s) {
            State::Ok(NameTree::Leaf(Name::Bound(b))) => b,
            other => panic!("{s}: expected a bound leaf, got {other:?}"),
        }
    }

    /// The rewritten path a lookup answered, shown.
    fn rewritten(s: &str) -> String {
        match look(s) {
            State::Ok(NameTree::Leaf(Name::Path(p))) => p.show(),
            other => panic!("{s}: expected an unbound path, got {other:?}"),
        }
    }

    fn failed(s: &str) -> String {
        match look(s) {
            State::Failed(message) => message,
            other => panic!("{s}: expected a failure, got {other:?}"),
        }
    }

    fn is_neg(s: &str) -> bool {
        look(s) == State::Ok(NameTree::Neg)
    }

    fn inet(host: &str, port: u16, fixed: bool) -> InetAddr {
        InetAddr {
            host: host.to_owned(),
            port,
            fixed,
        }
    }

    // ---- /$/inet and /$/fixedinet -------------------------------------

    #[test]
    fn inet_host_port_binds_with_residual() {
        let b = bound("/$/inet/127.0.0.1/8080/foo/bar");
        assert_eq!(
            b.id.show(),
            "/$/inet/127.0.0.1/8080",
            "the id is the path minus the residual"
        );
        assert_eq!(
            b.residual.show(),
            "/foo/bar",
            "what follows the port is the residual"
        );
        assert_eq!(b.addr, inet("127.0.0.1", 8080, false), "host then port");
        assert_eq!(b.weight, None, "a system namer sets no weight");
    }

    #[test]
    fn inet_without_residual_has_an_empty_residual() {
        let b = bound("/$/inet/localhost/80");
        assert_eq!(b.id.show(), "/$/inet/localhost/80");
        assert!(
            b.residual.is_empty(),
            "nothing after the port: the residual is `/`"
        );
    }

    #[test]
    fn fixedinet_keeps_its_scheme_and_is_fixed() {
        let b = bound("/$/fixedinet/example.com/443/x");
        assert_eq!(
            b.id.show(),
            "/$/fixedinet/example.com/443",
            "the id keeps the scheme the path used"
        );
        assert_eq!(b.residual.show(), "/x");
        assert_eq!(
            b.addr,
            inet("example.com", 443, true),
            "fixedinet resolves once"
        );
        let b = bound("/$/fixedinet/8080");
        assert_eq!(
            b.addr,
            inet("", 8080, true),
            "fixedinet has the port-only form too"
        );
    }

    #[test]
    fn inet_host_then_port_wins_over_port_only() {
        let b = bound("/$/inet/1234/5678");
        assert_eq!(
            b.addr,
            inet("1234", 5678, false),
            "host-then-port is tried first"
        );
        assert_eq!(b.id.show(), "/$/inet/1234/5678");
        assert!(b.residual.is_empty());
        let b = bound("/$/inet/80/90/x");
        assert_eq!(
            b.addr,
            inet("80", 90, false),
            "two numbers are host and port"
        );
        assert_eq!(b.residual.show(), "/x");
    }

    #[test]
    fn inet_port_only_binds_an_empty_host() {
        let b = bound("/$/inet/8080");
        assert_eq!(
            b.addr,
            inet("", 8080, false),
            "a lone port means the local host"
        );
        assert_eq!(b.id.show(), "/$/inet/8080", "the id is `/$/inet/<port>`");
        let b = bound("/$/inet/8080/svc/x");
        assert_eq!(
            b.addr,
            inet("", 8080, false),
            "a non-numeric element after the port is residual"
        );
        assert_eq!(b.id.show(), "/$/inet/8080");
        assert_eq!(b.residual.show(), "/svc/x");
    }

    #[test]
    fn inet_port_parses_like_java_parse_int() {
        let b = bound(r"/$/inet/h/\x2b80");
        assert_eq!(b.addr.port, 80, "a leading `+` is allowed");
        assert_eq!(
            b.id.show(),
            r"/$/inet/h/\x2b\x38\x30",
            "the id keeps the port as written"
        );
        assert_eq!(
            bound("/$/inet/h/0080").addr.port,
            80,
            "leading zeros are allowed"
        );
        assert_eq!(bound("/$/inet/h/-0").addr.port, 0, "`-0` is 0");
        let b = bound(r"/$/inet/h/\xd9\xa8\xd9\xa0");
        assert_eq!(
            b.addr.port, 80,
            "Arabic-Indic digits are decimal digits to Java"
        );
        let b = bound(r"/$/inet/h/\xef\xbc\x98\xef\xbc\x90");
        assert_eq!(
            b.addr.port, 80,
            "fullwidth digits are decimal digits to Java"
        );
        assert_eq!(
            failed("/$/inet/h/abc"),
            "Unknown namer: inet for path: /$/inet/h/abc",
            "a non-numeric port (and a non-numeric host-less port) is a class lookup of `inet`"
        );
        assert_eq!(
            failed("/$/inet/h/-"),
            "Unknown namer: inet for path: /$/inet/h/-",
            "a lone sign is no number"
        );
        assert_eq!(
            failed("/$/inet/h/8.0"),
            "Unknown namer: inet for path: /$/inet/h/8.0",
            "no decimals"
        );
    }

    #[test]
    fn inet_port_out_of_range_fails_with_javas_message() {
        assert_eq!(
            failed("/$/inet/h/70000"),
            "port out of range:70000",
            "an Int above 65535 fails"
        );
        assert_eq!(
            failed("/$/inet/h/-1"),
            "port out of range:-1",
            "a negative Int fails"
        );
        assert_eq!(
            failed("/$/inet/65536"),
            "port out of range:65536",
            "the port-only form checks too"
        );
        assert_eq!(
            bound("/$/inet/h/65535").addr.port,
            65535,
            "65535 is the largest port"
        );
        assert_eq!(bound("/$/inet/h/0").addr.port, 0, "0 is a port");
        assert_eq!(
            failed("/$/inet/h/2147483647"),
            "port out of range:2147483647",
            "Int.MaxValue is an Int"
        );
        assert_eq!(
            failed("/$/inet/h/2147483648"),
            "Unknown namer: inet for path: /$/inet/h/2147483648",
            "beyond Int.MaxValue is not an Int at all"
        );
        assert_eq!(
            failed("/$/inet/-2147483648"),
            "port out of range:-2147483648",
            "Int.MinValue is an Int"
        );
    }

    #[test]
    fn inet_host_goes_through_finagles_host_port_parser() {
        assert_eq!(
            failed("/$/inet/::1/80"),
            "requirement failed: You must specify host and port in hosts: ::1:80",
            "an IPv6 literal splits into too many colon pieces"
        );
        assert_eq!(
            failed(r"/$/inet/a\x2cb/80"),
            "requirement failed: You must specify host and port in hosts: a,b:80",
            "a comma starts another host:port entry"
        );
        let b = bound(r"/$/inet/\x20a/80");
        assert_eq!(b.addr.host, "a", "spaces around entries are dropped");
        assert_eq!(
            b.id.show(),
            r"/$/inet/\x20\x61/80",
            "the id keeps the original bytes"
        );
        assert!(
            failed(r"/$/inet/a:1\x2cb/80").contains("not supported"),
            "several host:port entries in one name are refused"
        );
    }

    #[test]
    fn inet_needs_the_dollar_and_scheme_exactly() {
        assert!(is_neg("/inet/h/80"), "no `/$` prefix: Neg");
        assert!(is_neg("/#/inet/h/80"), "`/#` is not the system namespace");
        assert_eq!(
            failed("/$/INET/h/80"),
            "Unknown namer: INET for path: /$/INET/h/80",
            "schemes are case-sensitive"
        );
    }

    #[test]
    fn non_utf8_elements_are_decoded_lossily_not_negative() {
        let b = bound(r"/$/inet/\xff/80/\xfe/ok");
        assert_eq!(
            b.addr.host, "\u{fffd}",
            "a malformed host byte becomes U+FFFD"
        );
        assert_eq!(
            b.id.show(),
            r"/$/inet/\xff/80",
            "the id keeps the original bytes"
        );
        assert_eq!(
            b.residual.show(),
            r"/\xef\xbf\xbd/ok",
            "the residual is re-encoded from the decoded text"
        );
        assert_eq!(
            failed(r"/$/\xff/x"),
            "Unknown namer: \u{fffd} for path: /$/\\xff/x",
            "a non-UTF-8 class name is an unknown namer, not Neg"
        );
        assert!(
            is_neg(r"/\xff/inet/h/80"),
            "a first element other than `$` is Neg"
        );
    }

    #[test]
    fn java_utf8_replaces_like_java() {
        assert_eq!(java_utf8(b"plain"), "plain", "valid UTF-8 is kept");
        assert_eq!(java_utf8(b"\xff"), "\u{fffd}");
        assert_eq!(
            java_utf8(b"\xed\xa0\x80"),
            "\u{fffd}",
            "an encoded surrogate is one replacement in Java"
        );
        assert_eq!(
            java_utf8(b"\xed\xa0"),
            "\u{fffd}",
            "a truncated surrogate too"
        );
        assert_eq!(
            java_utf8(b"\xed\xa0A"),
            "\u{fffd}A",
            "the non-continuation byte is kept"
        );
        assert_eq!(
            java_utf8(b"\xe2\x82"),
            "\u{fffd}",
            "a truncated sequence at the end is one replacement"
        );
        assert_eq!(
            java_utf8(b"\xc0\xaf"),
            "\u{fffd}\u{fffd}",
            "an overlong lead and its continuation"
        );
        assert_eq!(
            java_utf8(b"\xf4\x90\x80\x80"),
            "\u{fffd}".repeat(4),
            "beyond U+10FFFF: one per byte"
        );
        assert_eq!(
            java_utf8(b"a\xffb\xe2\x82\xacc"),
            "a\u{fffd}b\u{20ac}c",
            "valid text around errors is kept"
        );
    }

    #[test]
    fn java_parse_int_follows_java() {
        assert_eq!(java_parse_int("80"), Some(80));
        assert_eq!(java_parse_int("-2147483648"), Some(i32::MIN));
        assert_eq!(java_parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(java_parse_int("-2147483649"), None, "below Int.MinValue");
        assert_eq!(
            java_parse_int("99999999999999999999999"),
            None,
            "no overflow on long inputs"
        );
        assert_eq!(java_parse_int(""), None);
        assert_eq!(java_parse_int("-"), None);
        assert_eq!(java_parse_int("+-1"), None, "one sign at most");
        assert_eq!(java_parse_int(" 80"), None, "no whitespace");
        assert_eq!(
            java_parse_int("\u{0660}\u{0661}"),
            Some(1),
            "Arabic-Indic digits"
        );
        assert_eq!(
            java_parse_int("\u{00b2}"),
            None,
            "a superscript is not a decimal digit"
        );
        assert_eq!(
            java_parse_int("\u{1d7ce}"),
            None,
            "digits outside the BMP are surrogate pairs to Java"
        );
    }

    // ---- /$/fail, /$/nil, Neg ---------------------------------------------

    #[test]
    fn fail_prefix_is_fail() {
        assert_eq!(
            look("/$/fail"),
            State::Ok(NameTree::Fail),
            "`/$/fail` is Fail"
        );
        assert_eq!(
            look("/$/fail/a/b"),
            State::Ok(NameTree::Fail),
            "anything under `/$/fail` is Fail"
        );
        assert_eq!(
            failed("/$/failure"),
            "Unknown namer: failure for path: /$/failure",
            "the prefix is element-wise, not textual"
        );
    }

    #[test]
    fn nil_prefix_is_empty() {
        assert_eq!(
            look("/$/nil"),
            State::Ok(NameTree::Empty),
            "`/$/nil` is Empty"
        );
        assert_eq!(
            look("/$/nil/a/b"),
            State::Ok(NameTree::Empty),
            "anything under `/$/nil` is Empty"
        );
    }

    #[test]
    fn paths_outside_the_system_namespace_are_neg() {
        for p in [
            "/",
            "/$",
            "/svc/hello",
            "/#/io.l5d.fs/hello",
            "/#/inet/h/80",
            "/x/$/inet/h/80",
        ] {
            assert!(
                is_neg(p),
                "{p}: only `/$/<something>` is handled by the system namers"
            );
        }
    }

    // ---- unknown namers ------------------------------------------------------

    #[test]
    fn unknown_system_namer_is_an_error_naming_it() {
        assert_eq!(
            failed("/$/io.l5d.nope/a/b"),
            "Unknown namer: io.l5d.nope for path: /$/io.l5d.nope/a/b",
            "Linkerd names the class and the whole path"
        );
        assert_eq!(
            failed("/$/inet"),
            "Unknown namer: inet for path: /$/inet",
            "`/$/inet` without a port"
        );
        assert_eq!(
            failed("/$/fixedinet"),
            "Unknown namer: fixedinet for path: /$/fixedinet"
        );
        assert_eq!(
            failed("/$/io.buoyant.rinetx/80/h"),
            "Unknown namer: io.buoyant.rinetx for path: /$/io.buoyant.rinetx/80/h",
            "class names match exactly"
        );
    }

    #[test]
    fn finagle_namer_global_class_delegates_to_the_global_namer() {
        let b = bound("/$/com.twitter.finagle.namer.global/$/inet/h/80/x");
        assert_eq!(b.id.show(), "/$/inet/h/80", "the inner lookup binds");
        assert_eq!(b.residual.show(), "/x");
        assert!(
            is_neg("/$/com.twitter.finagle.namer.global/svc"),
            "and answers Neg outside `/$`"
        );
        assert_eq!(
            failed("/$/com.twitter.finagle.namer.global/$/nope"),
            "Unknown namer: nope for path: /$/com.twitter.finagle.namer.global/$/nope",
            "an inner unknown namer is reported with the outer path"
        );
    }

    // ---- io.buoyant.rinet ---------------------------------------------------

    #[test]
    fn rinet_binds_port_then_host() {
        // Linkerd RinetTest "rinet binds".
        let b = bound("/$/io.buoyant.rinet/12345/localhost/residual");
        assert_eq!(
            b.id.show(),
            "/$/io.buoyant.rinet/12345/localhost",
            "the id names rinet, port first"
        );
        assert_eq!(b.residual.show(), "/residual", "the rest is the residual");
        assert_eq!(
            b.addr,
            inet("localhost", 12345, false),
            "port first, host second"
        );
    }

    #[test]
    fn rinet_needs_port_and_host() {
        assert!(is_neg("/$/io.buoyant.rinet/80"), "one element: Neg");
        assert!(is_neg("/$/io.buoyant.rinet"), "no element: Neg");
        assert!(bound("/$/io.buoyant.rinet/80/h").residual.is_empty());
    }

    #[test]
    fn rinet_port_is_checked_only_by_the_resolver() {
        assert_eq!(
            failed("/$/io.buoyant.rinet/http/h"),
            "For input string: \"http\"",
            "a non-numeric port fails"
        );
        assert_eq!(
            failed("/$/io.buoyant.rinet/70000/h"),
            "port out of range:70000"
        );
        assert_eq!(
            failed(r"/$/io.buoyant.rinet/\x2b80/h"),
            Path::read("/+80/h").unwrap_err().message(),
            "a port that is an Int but not path syntax fails building the id"
        );
        assert!(
            failed(r"/$/io.buoyant.rinet/\x2a/h").contains("'*' found"),
            "`*` (port 0 to the inet resolver) never gets there: the id cannot hold it"
        );
        assert_eq!(
            failed("/$/io.buoyant.rinet/80/::1"),
            "requirement failed: You must specify host and port in hosts: ::1:80",
            "no IPv6 literals"
        );
    }

    #[test]
    fn rinet_id_is_parsed_from_text() {
        let b = bound(r"/$/io.buoyant.rinet/80/a\x2fb");
        assert_eq!(
            b.id.show(),
            "/$/io.buoyant.rinet/80/a/b",
            "Linkerd builds the id with Path.read, so a `/` in the host splits it"
        );
        assert_eq!(b.addr.host, "a/b");
        let message = failed(r"/$/io.buoyant.rinet/80/a\x3fb");
        assert_eq!(
            message,
            Path::read("/80/a?b").unwrap_err().message(),
            "a host that is not path syntax fails with the parser's message"
        );
    }

    // ---- io.buoyant.hostportPfx / porthostPfx -----------------------------

    #[test]
    fn hostport_pfx_splits_host_and_port() {
        // Linkerd HostPortTest.
        assert_eq!(
            rewritten("/$/io.buoyant.hostportPfx/ia/127.1:8080/etc"),
            "/ia/127.1/8080/etc",
            "IP:PORT"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.hostportPfx/ia/google.com:8180/etc"),
            "/ia/google.com/8180/etc",
            "HOST:PORT"
        );
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/ia/google.com:8180:abcdef/etc"),
            "HOST:PORT:ETC does not match"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.hostportPfx/ia/h:80"),
            "/ia/h/80",
            "no rest is fine"
        );
    }

    #[test]
    fn porthost_pfx_puts_the_port_first() {
        assert_eq!(
            rewritten("/$/io.buoyant.porthostPfx/ia/127.1:8080/etc"),
            "/ia/8080/127.1/etc",
            "IP:PORT"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.porthostPfx/ph/a:http"),
            "/ph/http/a",
            "a named port"
        );
    }

    #[test]
    fn hostport_port_must_be_a_lowercase_dns_label() {
        assert!(is_neg("/$/io.buoyant.hostportPfx/ia/h"), "no colon: Neg");
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/ia/h:HTTP"),
            "upper case is not a DNS label"
        );
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/ia/h:-80"),
            "a label starts with a letter or digit"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.hostportPfx/ia/h:80-"),
            "/ia/h/80-",
            "but may end with `-`"
        );
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/ia/h:8_0"),
            "no underscore in a label"
        );
        let long = "a".repeat(64);
        assert!(
            is_neg(&format!("/$/io.buoyant.hostportPfx/ia/h:{long}")),
            "at most 63 characters"
        );
        let max = "a".repeat(63);
        assert_eq!(
            rewritten(&format!("/$/io.buoyant.hostportPfx/ia/h:{max}")),
            format!("/ia/h/{max}")
        );
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/ia/a::80"),
            "an empty middle piece counts"
        );
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/ia/::1:80"),
            "no IPv6 literals"
        );
    }

    #[test]
    fn hostport_follows_java_split_quirks() {
        assert_eq!(
            rewritten("/$/io.buoyant.hostportPfx/ia/h:80:/etc"),
            "/ia/h/80/etc",
            "Java's split drops a trailing empty piece"
        );
        assert_eq!(
            failed("/$/io.buoyant.hostportPfx/ia/:80/etc"),
            "requirement failed",
            "an empty host passes the match but cannot be a path element"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.hostportPfx/ia/H.Example:80"),
            "/ia/H.Example/80",
            "the host keeps its case"
        );
    }

    #[test]
    fn hostport_needs_two_elements() {
        assert!(
            is_neg("/$/io.buoyant.hostportPfx/h:80"),
            "the prefix element is required"
        );
        assert!(is_neg("/$/io.buoyant.hostportPfx"), "an empty path is Neg");
        assert!(is_neg("/$/io.buoyant.porthostPfx/h:80"));
    }

    // ---- io.buoyant.http.* ----------------------------------------------------

    #[test]
    fn any_method_drops_an_upper_case_method() {
        // Linkerd HttpTest "anyMethod".
        assert_eq!(
            rewritten("/$/io.buoyant.http.anyMethod/GET/foo/bar/bah"),
            "/foo/bar/bah"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyMethod/A.B/foo/bar/bah"),
            "not a method: Neg"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyMethod/get/foo"),
            "methods are upper case"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.anyMethod/GET"),
            "/",
            "the method alone leaves the empty path"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyMethod"),
            "an empty path is Neg"
        );
    }

    #[test]
    fn any_method_pfx_drops_the_method_after_the_prefix() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.anyMethodPfx/foo/GET/bar/bah"),
            "/foo/bar/bah"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyMethodPfx/foo/A.B/bar/bah"),
            "not a method: Neg"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyMethodPfx/GET"),
            "the prefix and the method are both required"
        );
    }

    #[test]
    fn any_host_drops_a_host() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.anyHost/a.b/foo/bar/bah"),
            "/foo/bar/bah"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyHost/a%b/foo/bar/bah"),
            "`%` is not a host character"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.anyHost/A_b-c:8080/x"),
            "/x",
            "letters, digits, `._:-`"
        );
    }

    #[test]
    fn any_host_pfx_drops_the_host_after_the_prefix() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.anyHostPfx/foo/a.b/bar/bah"),
            "/foo/bar/bah"
        );
        assert!(
            is_neg("/$/io.buoyant.http.anyHostPfx/foo/a%b/bar/bah"),
            "not a host: Neg"
        );
    }

    #[test]
    fn subdomain_of_keeps_the_subdomain() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOf/a.b/foo.a.b/bar/bah"),
            "/foo/bar/bah"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOf/a.b/x.y.a.b"),
            "/x.y",
            "deeper names keep their dots"
        );
        assert!(
            is_neg("/$/io.buoyant.http.subdomainOf/a.b/a.b/x"),
            "the domain itself has no subdomain"
        );
        assert!(
            is_neg("/$/io.buoyant.http.subdomainOf/a.b/fooa.b/x"),
            "the suffix includes the dot"
        );
        assert!(
            is_neg("/$/io.buoyant.http.subdomainOf/a.b/foo.A.B/x"),
            "matching is case-sensitive"
        );
        assert!(
            is_neg("/$/io.buoyant.http.subdomainOf/a%b/foo.a%b/x"),
            "both must look like hosts"
        );
    }

    #[test]
    fn subdomain_of_pfx_keeps_prefix_and_subdomain() {
        // Linkerd HttpTest "subdomainOfPfx" and its variants.
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.a.b/bah"),
            "/foo/bar/bah"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar_suffix.a.b/bah"),
            "/foo/bar_suffix/bah",
            "underscores are host characters"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar-suffix.a.b/bah"),
            "/foo/bar-suffix/bah",
            "dashes are host characters"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.a.b:9090/bah"),
            "/foo/bar/bah",
            "a port is dropped before matching"
        );
        assert!(
            is_neg("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.c.d/bah"),
            "another domain: Neg"
        );
        assert!(
            is_neg("/$/io.buoyant.http.subdomainOfPfx/a.b/foo"),
            "three elements are required"
        );
    }

    #[test]
    fn subdomain_port_is_only_dropped_after_a_host() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOf/a.b/:x.a.b/y"),
            "/:x/y",
            "a leading colon does not start a port, so `:x` is the subdomain"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.subdomainOf/a.b/x.a.b:1:2/y"),
            "/x/y",
            "the port starts at the first colon"
        );
    }

    #[test]
    fn domain_to_path_reverses_labels() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPath/foo.buoyant.io"),
            "/io/buoyant/foo"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPath/foo.buoyant.io/x/y"),
            "/io/buoyant/foo/x/y"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPath/Foo.IO:80"),
            "/IO:80/Foo",
            "no lower-casing; a port stays"
        );
        assert!(
            is_neg("/$/io.buoyant.http.domainToPath/a%b"),
            "not a host: Neg"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPath/foo./x"),
            "/foo/x",
            "a trailing dot is dropped by split"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPath/.../x"),
            "/x",
            "only dots: no labels at all"
        );
        assert_eq!(
            failed("/$/io.buoyant.http.domainToPath/foo..io"),
            "requirement failed",
            "an empty middle label cannot be a path element"
        );
        assert_eq!(
            failed("/$/io.buoyant.http.domainToPath/.foo"),
            "requirement failed",
            "nor an empty first label"
        );
    }

    #[test]
    fn domain_to_path_pfx_reverses_labels_after_the_prefix() {
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPathPfx/pfx/foo.buoyant.io"),
            "/pfx/io/buoyant/foo"
        );
        assert_eq!(
            rewritten("/$/io.buoyant.http.domainToPathPfx/pfx/a.b/c"),
            "/pfx/b/a/c"
        );
        assert!(
            is_neg("/$/io.buoyant.http.domainToPathPfx/foo.buoyant.io"),
            "the prefix is required"
        );
    }

    #[test]
    fn rewriters_see_lossily_decoded_elements() {
        assert_eq!(
            rewritten(r"/$/io.buoyant.http.anyMethod/GET/\xff"),
            r"/\xef\xbf\xbd",
            "the class namer's path was re-encoded from text"
        );
    }

    #[test]
    fn java_split_drops_only_trailing_empties() {
        assert_eq!(
            java_split("", ':'),
            vec![""],
            "no separator: the whole (empty) string"
        );
        assert_eq!(
            java_split(":", ':'),
            Vec::<&str>::new(),
            "only empties: nothing"
        );
        assert_eq!(
            java_split(":80", ':'),
            vec!["", "80"],
            "a leading empty piece stays"
        );
        assert_eq!(
            java_split("a:80::", ':'),
            vec!["a", "80"],
            "trailing empty pieces go"
        );
    }
}
