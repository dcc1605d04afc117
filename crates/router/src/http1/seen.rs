//! What a request's head held, noted while the server parsed it, so that
//! the router does not look for what is not there.
//!
//! Every header the router reads, strips or checks would otherwise cost a
//! hash of its name and a probe of the map per request, and most requests
//! carry none of them (no `l5d-*`, no trace context, no `Via`, no
//! hop-by-hop field but perhaps `Connection: keep-alive`). The parse pass
//! looks at every name anyway; noting the few families here is a length
//! switch per field. A request not parsed by Strait's HTTP/1 server (h2)
//! is [`Seen::ALL`]: every family may be there, every check is made.

use http::header::{self, HeaderName};

use super::checks;

/// The header families of one request head (eight bytes: it rides in
/// every request's body, which the routing futures hold and move).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    bits: u8,
    /// `Name: value\r\n` of every field, in bytes (saturated).
    block: u32,
    /// Where the passed-on `Host`'s value sits in the passed-on fields
    /// (start and length), when known: it is read there without a search.
    host: (u16, u16),
}

/// `Seen::host`: not known.
const NO_SPAN: (u16, u16) = (u16::MAX, 0);

const L5D: u8 = 1;
const TRACE: u8 = 2;
const VIA: u8 = 4;
const HOP: u8 = 8;
/// The head passed the checks that need every field: one valid `Host` at
/// most, only `chunked` as a transfer coding.
const CHECKED: u8 = 16;
/// A `Host` field is there (never set in [`Seen::ALL`]: "may be missing").
const HOST: u8 = 32;
/// The `Host` field is among the fields passed on as written, not in the
/// request's map (see [`Seen::host_passed`]).
const HOST_PASSED: u8 = 64;
/// Not a family, but a field the router reads (never kept in [`Seen`]).
const READ: u8 = 128;

impl Seen {
    /// Nothing noted: every family may be present.
    pub const ALL: Seen = Seen {
        bits: L5D | TRACE | VIA | HOP,
        block: 0,
        host: NO_SPAN,
    };

    /// A name starting `l5d-` (Linkerd's context, dtab, destination and
    /// request-id headers).
    pub fn l5d(&self) -> bool {
        self.bits & L5D != 0
    }

    /// `traceparent`, `tracestate`, `b3` or `x-b3-*`, or an `l5d-*` (which
    /// may be `l5d-ctx-trace` or `l5d-sample`).
    pub fn trace(&self) -> bool {
        self.bits & (TRACE | L5D) != 0
    }

    /// A `Host` field is certainly there (`false`: it may be missing).
    pub fn host(&self) -> bool {
        self.bits & HOST != 0
    }

    /// The `Host` field (one, checked) is passed on as the client wrote it,
    /// among the fields outside the request's map: the router reads it
    /// there (identifiers, the access log), and takes it into the map
    /// (`RequestBody::take_host`) only to change it.
    pub fn host_passed(&self) -> bool {
        self.bits & HOST_PASSED != 0
    }

    /// With [`Seen::host_passed`] set to `passed` (where its value sits
    /// not known).
    pub(crate) fn with_host_passed(self, passed: bool) -> Seen {
        Seen {
            bits: if passed {
                self.bits | HOST_PASSED
            } else {
                self.bits & !HOST_PASSED
            },
            host: NO_SPAN,
            ..self
        }
    }

    /// With the passed-on `Host`'s value at `at` in the passed-on fields
    /// (not kept past 64 KiB).
    pub(crate) fn with_host_at(self, at: std::ops::Range<usize>) -> Seen {
        let span = match (u16::try_from(at.start), u16::try_from(at.len())) {
            (Ok(s), Ok(l)) if s != u16::MAX && self.host_passed() => (s, l),
            _ => NO_SPAN,
        };
        Seen { host: span, ..self }
    }

    /// Where the passed-on `Host`'s value sits in the passed-on fields,
    /// when known.
    pub(crate) fn host_at(&self) -> Option<std::ops::Range<usize>> {
        let (s, l) = self.host;
        (s != u16::MAX).then(|| usize::from(s)..usize::from(s) + usize::from(l))
    }

    /// `Via`.
    pub fn via(&self) -> bool {
        self.bits & VIA != 0
    }

    /// A hop-by-hop field: `Connection`, `Keep-Alive`, `Proxy-Connection`,
    /// `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
    /// `Proxy-Authenticate`, `Proxy-Authorization`.
    pub fn hop(&self) -> bool {
        self.bits & HOP != 0
    }

    /// The size of the header block (`Name: value\r\n` each) of a head
    /// that passed the field checks, if it did: the limits that remain
    /// need only this figure and the declared length.
    pub fn checked_block(&self) -> Option<usize> {
        (self.bits & CHECKED != 0).then_some(self.block as usize)
    }
}

/// The name of a field the router reads that requests often carry, known
/// without parsing it (`HeaderName::from_bytes` lower-cases the name into
/// a buffer and matches it against every standard name: ~110
/// instructions for `Host`); `None` for the others.
pub(super) fn known(name: &[u8]) -> Option<HeaderName> {
    // A token's bytes: `| 0x20` lower-cases a letter and leaves `-` be
    // (no other token byte turns into a letter or `-` this way).
    let is = |lower: &[u8]| name.iter().zip(lower).all(|(a, b)| a | 0x20 == *b);
    match name.len() {
        4 if is(b"host") => Some(header::HOST),
        14 if is(b"content-length") => Some(header::CONTENT_LENGTH),
        10 if is(b"connection") => Some(header::CONNECTION),
        17 if is(b"transfer-encoding") => Some(header::TRANSFER_ENCODING),
        2 if is(b"te") => Some(header::TE),
        7 if is(b"upgrade") => Some(header::UPGRADE),
        3 if is(b"via") => Some(header::VIA),
        6 if is(b"expect") => Some(header::EXPECT),
        9 if is(b"forwarded") => Some(header::FORWARDED),
        _ => None,
    }
}

/// Notes a head's fields one at a time.
#[derive(Debug)]
pub(super) struct Noter {
    bits: u8,
    block: usize,
    hosts: usize,
    fields_ok: bool,
}

impl Noter {
    pub(super) fn new() -> Noter {
        Noter {
            bits: 0,
            block: 0,
            hosts: 0,
            fields_ok: true,
        }
    }

    /// Notes one field: its first letter and length pick the one or two
    /// names it could be, so a field of no family costs two compares.
    ///
    /// Whether the router reads or changes it (a family above but `Host`,
    /// or `Content-Length`, `Expect`, `Forwarded`): those go in the
    /// request's map, the others are passed on as written (see
    /// [`super::fields::kept_block`]). `Host` is noted and checked, and
    /// passed on as written: most requests are routed by it and forwarded
    /// with it unchanged, so a map made for it alone (two allocations, a
    /// hash, an insert) would be paid for nothing.
    pub(super) fn field(&mut self, name: &[u8], value: &[u8]) -> bool {
        self.block += name.len() + value.len() + 4;
        let Some(&first) = name.first() else {
            return false;
        };
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        let starts = |p: &[u8]| {
            name.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
        };
        // ASCII letters to lower case; `-` and digits have the bit already.
        let bits = match (first | 0x20, name.len()) {
            (b'l', 5..) if starts(b"l5d-") => L5D,
            (b'x', 6..) if starts(b"x-b3-") => TRACE,
            (b'b', 2) if is(b"b3") => TRACE,
            (b't', 10) if is(b"tracestate") => TRACE,
            (b't', 11) if is(b"traceparent") => TRACE,
            (b'v', 3) if is(b"via") => VIA,
            (b'h', 4) if is(b"host") => {
                self.hosts += 1;
                self.fields_ok &= self.hosts == 1 && checks::is_host(value);
                self.bits |= HOST;
                return false;
            }
            (b't', 17) if is(b"transfer-encoding") => {
                // Only `chunked` may be passed on (else 501, with the
                // field in the message: the full check makes it).
                self.fields_ok &= value
                    .split(|&b| b == b',')
                    .all(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                HOP
            }
            (b't', 2) if is(b"te") => HOP,
            (b't', 7) if is(b"trailer") => HOP,
            (b'u', 7) if is(b"upgrade") => HOP,
            (b'c', 10) if is(b"connection") => HOP,
            (b'k', 10) if is(b"keep-alive") => HOP,
            (b'p', 16) if is(b"proxy-connection") => HOP,
            (b'p', 18) if is(b"proxy-authenticate") => HOP,
            (b'p', 19) if is(b"proxy-authorization") => HOP,
            (b'c', 14) if is(b"content-length") => READ,
            (b'e', 6) if is(b"expect") => READ,
            (b'f', 9) if is(b"forwarded") => READ,
            _ => return false,
        };
        self.bits |= bits & !READ;
        true
    }

    /// What was noted.
    pub(super) fn finish(self) -> Seen {
        Seen {
            bits: self.bits | if self.fields_ok { CHECKED } else { 0 },
            block: u32::try_from(self.block).unwrap_or(u32::MAX),
            host: NO_SPAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(fields: &[(&str, &str)]) -> Seen {
        let mut n = Noter::new();
        for (k, v) in fields {
            n.field(k.as_bytes(), v.as_bytes());
        }
        n.finish()
    }

    #[test]
    fn a_plain_head_has_no_family() {
        let s = seen(&[("Host", "hello"), ("User-Agent", "curl"), ("Accept", "*/*")]);
        assert!(!s.l5d() && !s.trace() && !s.via() && !s.hop());
        let block = "Host".len() + "hello".len() + "User-Agent".len() + "curl".len();
        let block = block + "Accept".len() + "*/*".len() + 3 * 4;
        assert_eq!(s.checked_block(), Some(block));
    }

    #[test]
    fn each_family_is_noted_whatever_the_case() {
        assert!(seen(&[("L5D-Dtab", "/a=>/b")]).l5d());
        assert!(seen(&[("l5d-ctx-deadline", "1 2")]).trace());
        assert!(!seen(&[("l5d", "x")]).l5d());
        assert!(!seen(&[("l5d-", "x")]).l5d(), "a prefix alone is no name");
        for other in [
            "x-b3",
            "tracestateX",
            "Host2",
            "proxy-connectio",
            "content-type",
            "b4",
        ] {
            let s = seen(&[(other, "1")]);
            assert!(!s.l5d() && !s.trace() && !s.via() && !s.hop(), "{other}");
        }
        for t in [
            "traceparent",
            "TraceState",
            "b3",
            "X-B3-TraceId",
            "x-b3-sampled",
        ] {
            let s = seen(&[(t, "1")]);
            assert!(s.trace() && !s.l5d(), "{t}");
        }
        assert!(seen(&[("VIA", "1.1 a")]).via());
        for h in [
            "Connection",
            "keep-alive",
            "Proxy-Connection",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Proxy-Authenticate",
            "proxy-authorization",
        ] {
            let s = seen(&[(h, "chunked")]);
            assert!(s.hop() && !s.trace() && !s.via(), "{h}");
        }
        assert_eq!(Seen::ALL.checked_block(), None);
        assert!(Seen::ALL.l5d() && Seen::ALL.trace() && Seen::ALL.via() && Seen::ALL.hop());
    }

    #[test]
    fn the_fields_the_router_reads_are_told_apart() {
        let mut n = Noter::new();
        for read in [
            "l5d-dtab",
            "X-B3-TraceId",
            "traceparent",
            "Via",
            "connection",
            "Transfer-Encoding",
            "Content-Length",
            "EXPECT",
            "Forwarded",
        ] {
            assert!(n.field(read.as_bytes(), b"1"), "{read}");
        }
        for other in [
            "User-Agent",
            "Accept",
            "Cookie",
            "X-Forwarded-For",
            "Content-Type",
            "Hosts",
            "l5d",
            "",
        ] {
            assert!(!n.field(other.as_bytes(), b"1"), "{other}");
        }
        // `Host` is noted and checked, and passed on as written.
        let mut n = Noter::new();
        assert!(!n.field(b"HOST", b"web:8080"));
        let s = n.finish();
        assert!(s.host() && s.checked_block().is_some());
        let mut n = Noter::new();
        assert!(!n.field(b"Host", b"a b"));
        assert!(
            n.finish().checked_block().is_none(),
            "a bad Host fails the checks"
        );
    }

    #[test]
    fn known_names_are_the_standard_ones_in_any_case() {
        for n in [
            "HOST",
            "Content-Length",
            "connection",
            "Transfer-Encoding",
            "te",
            "Upgrade",
            "via",
            "Expect",
            "FORWARDED",
        ] {
            let parsed = HeaderName::from_bytes(n.as_bytes()).ok();
            assert_eq!(known(n.as_bytes()), parsed, "{n}");
            assert!(parsed.is_some(), "{n}");
        }
        for n in ["Hosts", "hast", "x-forwarded", "User-Agent", "trailer", ""] {
            assert_eq!(known(n.as_bytes()), None, "{n}");
        }
    }

    #[test]
    fn a_host_field_is_noted_and_all_means_it_may_be_missing() {
        assert!(seen(&[("HOST", "a")]).host());
        assert!(seen(&[("Accept", "*/*"), ("host", "a")]).host());
        assert!(!seen(&[("Accept", "*/*"), ("Hosts", "a")]).host());
        assert!(!seen(&[]).host());
        assert!(!Seen::ALL.host());
    }

    #[test]
    fn a_head_the_full_check_must_see_is_not_checked() {
        assert_eq!(seen(&[("Host", "a"), ("Host", "b")]).checked_block(), None);
        assert_eq!(seen(&[("Host", "a b")]).checked_block(), None);
        assert_eq!(
            seen(&[("Transfer-Encoding", "gzip, chunked")]).checked_block(),
            None
        );
        assert_eq!(
            seen(&[("Transfer-Encoding", ", chunked")]).checked_block(),
            None
        );
        assert!(
            seen(&[("Transfer-Encoding", "Chunked")])
                .checked_block()
                .is_some()
        );
        assert!(seen(&[]).checked_block().is_some());
    }
}
