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
#[path = "global_tests.rs"]
mod tests;
