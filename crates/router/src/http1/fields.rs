//! Header fields kept as the peer wrote them: a response's end-to-end
//! fields, and a request's fields the router never reads.
//!
//! Most responses pass through a router unchanged but for their hop-by-hop
//! fields (dropped) and `Via` (added). Building a `HeaderMap` of every
//! response (a name lookup, a hash and an insert per field, an allocation
//! per map) only for the server to walk it and write each field back out
//! cost ~2.5k instructions per request (callgrind), as much as parsing the
//! head. So the HTTP/1 client keeps the fields' bytes instead: the head's
//! own lines when they are one run of CRLF-ended lines (the usual case: a
//! slice of the read buffer, no copy), or the kept fields re-written as
//! `name: value` lines when a dropped field sits between kept ones, or
//! the head ended its lines with bare LFs. The server writes the block as
//! it is; a map is built only where something reads or changes the fields
//! ([`Fields::into_map`]: `clearContext` with `l5d-*` fields, `setHost`'s
//! `Location` rewrite, a caller that is not HTTP/1).
//!
//! A request is split the same way by the HTTP/1 server ([`kept_block`]):
//! the fields the router reads or changes (`Host`, `l5d-*`, trace context,
//! `Via`, hop-by-hop fields, `Content-Length`, `Expect`, `Forwarded`) go in
//! its map, the others (`User-Agent`, `Accept`, `Cookie`, ...: ~350
//! instructions each in a map) ride with its body as written and the
//! HTTP/1 client writes them after the map's. What reads an arbitrary
//! field looks in both ([`get`]: an identifier's `header`, the access
//! log's `Referer` and `User-Agent`).
//!
//! Names keep the case the peer wrote them in (nginx and HAProxy pass
//! them the same way); values are what `httparse` accepted, which is what
//! `HeaderValue` accepts (tab, visible ASCII, obs-text).

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, VIA};

use super::VIA_VALUE;

/// The end-to-end fields of a response head.
#[derive(Debug, Default)]
pub struct Fields {
    /// The fields, each a `name: value\r\n` line.
    block: Bytes,
    /// The `Content-Length` the response declared, when [`HAS_LENGTH`]
    /// (none with `Transfer-Encoding`).
    length: u64,
    /// [`HAS_LENGTH`], [`DATE`], [`L5D`], [`VIA_LINE`] (packed: the fields
    /// ride in every response body, and each move copies them).
    flags: u8,
}

/// `Fields::length` holds the declared `Content-Length`.
const HAS_LENGTH: u8 = 1;
/// A `Date` field is among them.
const DATE: u8 = 2;
/// An `l5d-*` field is among them.
const L5D: u8 = 4;
/// This hop's `Via` goes after them.
const VIA_LINE: u8 = 8;

/// The flags a kept field's name sets.
fn note(name: &[u8]) -> u8 {
    match name.len() {
        4 if name.eq_ignore_ascii_case(b"date") => DATE,
        5.. if name[..4].eq_ignore_ascii_case(b"l5d-") => L5D,
        _ => 0,
    }
}

/// The fields of `head` (the bytes `spans` index: each field's name and
/// value, start and end) that `keep` keeps (given each field's index and
/// name), as `name: value\r\n` lines: a slice of `head` when they are one
/// run of CRLF-ended lines, else a copy.
pub(crate) fn kept_block(
    head: &Bytes,
    spans: &[(u32, u32, u32, u32)],
    mut keep: impl FnMut(usize, &[u8]) -> bool,
) -> Bytes {
    // The fields end where the blank line that ends the head starts.
    let crlf_head = head.ends_with(b"\r\n\r\n");
    let end_of_fields = head.len().saturating_sub(2);
    // Field `i`'s line: where it ends, and whether in CRLF.
    let line = |i: usize| {
        let end = spans.get(i + 1).map_or(end_of_fields, |n| n.0 as usize);
        let crlf = (i + 1 < spans.len() || crlf_head)
            && end >= 2
            && head.get(end - 2..end) == Some(b"\r\n");
        (end, crlf)
    };
    // One pass: are the kept fields one run of CRLF-ended lines?
    let (mut first, mut last) = (None, 0);
    let mut gap = false;
    let mut dropped = false;
    let mut clean = true;
    for (i, &(ns, ne, _, _)) in spans.iter().enumerate() {
        let name = head.get(ns as usize..ne as usize).unwrap_or_default();
        if keep(i, name) {
            let (end, crlf) = line(i);
            clean &= crlf;
            gap |= dropped;
            first.get_or_insert(ns as usize);
            last = end;
        } else {
            // Fields dropped before the first kept one leave no gap.
            dropped = first.is_some();
        }
    }
    match first {
        None => Bytes::new(),
        Some(first) if clean && !gap => head.slice(first..last),
        Some(_) => {
            // Runs of kept CRLF lines are copied whole (a request's fields
            // around its `Host`); a line ending in a bare LF is written
            // again.
            let mut b = BytesMut::with_capacity(head.len());
            let mut run: Option<(usize, usize)> = None;
            let flush = |b: &mut BytesMut, run: &mut Option<(usize, usize)>| {
                if let Some((from, to)) = run.take() {
                    b.extend_from_slice(head.get(from..to).unwrap_or_default());
                }
            };
            for (i, &(ns, ne, vs, ve)) in spans.iter().enumerate() {
                let name = head.get(ns as usize..ne as usize).unwrap_or_default();
                if !keep(i, name) {
                    flush(&mut b, &mut run);
                    continue;
                }
                match line(i) {
                    (end, true) => run = Some((run.map_or(ns as usize, |r| r.0), end)),
                    (_, false) => {
                        flush(&mut b, &mut run);
                        b.extend_from_slice(name);
                        b.extend_from_slice(b": ");
                        b.extend_from_slice(head.get(vs as usize..ve as usize).unwrap_or_default());
                        b.extend_from_slice(b"\r\n");
                    }
                }
            }
            flush(&mut b, &mut run);
            b.freeze()
        }
    }
}

/// Each `name: value\r\n` line of `block`: its name and value.
pub(crate) fn lines(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    block.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// The first value of `name` (any case) among `block`'s lines (the
/// lines [`lines`] gives).
pub(crate) fn get<'b>(block: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    find(block, name).map(|(_, v)| v)
}

/// The first line named `name` (any case) taken out of `block`: its
/// value, and the block without the line (a slice when the line is the
/// first; else the rest copied around it).
pub(crate) fn take(block: &Bytes, name: &[u8]) -> Option<(Bytes, Bytes)> {
    let (line, value) = find(block, name)?;
    let value = block.slice_ref(value);
    let rest = if line.start == 0 {
        block.slice(line.end..)
    } else {
        let mut rest = Vec::with_capacity(block.len() - line.len());
        rest.extend_from_slice(&block[..line.start]);
        rest.extend_from_slice(&block[line.end..]);
        Bytes::from(rest)
    };
    Some((value, rest))
}

/// The first CRLF line named `name` (any case) in `block`: where it sits
/// (its CRLF included) and its value. Each line's start is compared with
/// the name before the line is scanned: the identifier reads `Host` here
/// for most requests, most often from the first line.
fn find<'b>(block: &'b [u8], name: &[u8]) -> Option<(std::ops::Range<usize>, &'b [u8])> {
    let mut start = 0;
    while let Some(rest) = block.get(start..).filter(|r| !r.is_empty()) {
        let named = rest.get(name.len()) == Some(&b':')
            && rest
                .get(..name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name));
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        if named && let Some(text) = rest[..len].strip_suffix(b"\r\n") {
            let value = text.get(name.len() + 1..).unwrap_or_default().trim_ascii();
            return Some((start..start + len, value));
        }
        start += len;
    }
    None
}

/// `block`'s lines appended to `map` (the values share `block`'s bytes).
pub(crate) fn append_to(block: &Bytes, map: &mut HeaderMap) {
    for (name, value) in lines(block) {
        // httparse accepted both: neither can fail here.
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_maybe_shared(block.slice_ref(value)),
        ) else {
            continue;
        };
        map.append(n, v);
    }
}

impl Fields {
    /// The fields of `head` (the bytes `spans` index: each field's name
    /// and value, start and end) that `keep` keeps; `length` is the
    /// declared `Content-Length`.
    pub(crate) fn new(
        head: &Bytes,
        spans: &[(u32, u32, u32, u32)],
        keep: impl Fn(&[u8]) -> bool,
        length: Option<u64>,
    ) -> Fields {
        let mut f = Fields {
            length: length.unwrap_or(0),
            flags: if length.is_some() { HAS_LENGTH } else { 0 },
            ..Fields::default()
        };
        let mut flags = 0;
        f.block = kept_block(head, spans, |_, name| {
            let kept = keep(name);
            if kept {
                flags |= note(name);
            }
            kept
        });
        f.flags |= flags;
        f
    }

    /// Each field's name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        lines(&self.block)
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        get(&self.block, name)
    }

    /// The declared `Content-Length`.
    pub fn length(&self) -> Option<u64> {
        (self.flags & HAS_LENGTH != 0).then_some(self.length)
    }

    /// Whether a `Date` field is among them.
    pub fn has_date(&self) -> bool {
        self.flags & DATE != 0
    }

    /// Whether an `l5d-*` field is among them.
    pub fn has_l5d(&self) -> bool {
        self.flags & L5D != 0
    }

    /// Appends this hop's `Via` (`1.1 strait`) after the fields.
    pub fn add_via(&mut self) {
        self.flags |= VIA_LINE;
    }

    /// Writes the fields, each line ending in CRLF.
    pub fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.block);
        if self.flags & VIA_LINE != 0 {
            buf.extend_from_slice(b"via: ");
            buf.extend_from_slice(VIA_VALUE.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }

    /// The fields as a map, followed by what `map` held (the values share
    /// the head's bytes).
    pub fn into_map(self, map: &mut HeaderMap) {
        let mut out = HeaderMap::with_capacity(map.len() + 8);
        append_to(&self.block, &mut out);
        if self.flags & VIA_LINE != 0 {
            out.append(VIA, HeaderValue::from_static(VIA_VALUE));
        }
        let mut last = None;
        for (name, value) in std::mem::take(map) {
            if let Some(n) = name {
                last = Some(n);
            }
            if let Some(n) = &last {
                out.append(n.clone(), value);
            }
        }
        *map = out;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::http1::wire::parse_head;

    fn fields(head: &[u8]) -> (Fields, Bytes) {
        let mut buf = BytesMut::from(head);
        let base = buf.as_ptr() as usize;
        let h = parse_head(&mut buf).unwrap().unwrap();
        assert!(h.headers.is_empty(), "{:?}", h.headers);
        let f = h.fields.unwrap();
        // The block, and whether it is the head's own bytes (no copy).
        let shared =
            f.block.is_empty() || (base..base + head.len()).contains(&(f.block.as_ptr() as usize));
        let tag = Bytes::from_static(if shared { b"shared" } else { b"copied" });
        (f, tag)
    }

    fn written(f: &Fields) -> String {
        let mut out = Vec::new();
        f.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    proptest! {
        /// `get` finds what a search of `lines` finds.
        #[test]
        fn get_is_the_first_line_of_the_name(
            fields in prop::collection::vec(("(?i)(host|x-a|hos|hostx|a)", "[ -~]{0,12}"), 0..6),
            bare in any::<bool>(),
        ) {
            let mut block = Vec::new();
            for (n, v) in &fields {
                block.extend_from_slice(format!("{n}:{v}").as_bytes());
                block.extend_from_slice(if bare { b"\n" } else { b"\r\n" });
            }
            for name in [&b"host"[..], b"x-a", b"a"] {
                let want = lines(&block).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
                prop_assert_eq!(get(&block, name), want);
            }
        }
    }

    #[test]
    fn a_field_is_taken_out_of_a_block_and_the_rest_kept_in_order() {
        let block = Bytes::from_static(b"Host: a:80\r\nX-A: 1\r\nhOST:  b \r\nX-B: 2\r\n");
        // The first of its name, any case; the rest a slice (no copy).
        let (v, rest) = take(&block, b"host").unwrap();
        assert_eq!(&v[..], b"a:80");
        assert_eq!(&rest[..], b"X-A: 1\r\nhOST:  b \r\nX-B: 2\r\n");
        assert_eq!(rest.as_ptr(), block[12..].as_ptr());
        // From the middle: the lines around it, copied.
        let (v, rest) = take(&rest, b"HOST").unwrap();
        assert_eq!(&v[..], b"b");
        assert_eq!(&rest[..], b"X-A: 1\r\nX-B: 2\r\n");
        assert!(take(&rest, b"host").is_none());
        assert!(take(&Bytes::new(), b"host").is_none());
        // A name is matched whole.
        assert!(take(&Bytes::from_static(b"Hosts: x\r\n"), b"host").is_none());
    }

    #[test]
    fn a_clean_head_is_passed_on_as_its_own_bytes() {
        let (f, tag) = fields(
            b"HTTP/1.1 200 OK\r\nServer: x\r\nDate: Mon, 07 Dec 2026 18:00:00 GMT\r\n\
              Content-Length: 64\r\nConnection: keep-alive\r\n\r\n",
        );
        assert_eq!(tag, "shared");
        assert_eq!(
            written(&f),
            "Server: x\r\nDate: Mon, 07 Dec 2026 18:00:00 GMT\r\nContent-Length: 64\r\n"
        );
        assert!(f.has_date());
        assert!(!f.has_l5d());
        assert_eq!(f.length(), Some(64));
        assert_eq!(f.get(b"server"), Some(&b"x"[..]));
        assert_eq!(f.get(b"connection"), None);
    }

    #[test]
    fn fields_dropped_before_or_after_the_kept_run_leave_it_shared() {
        let (f, tag) = fields(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nServer: x\r\nContent-Length: 0\r\n\
              Keep-Alive: timeout=5\r\n\r\n",
        );
        assert_eq!(tag, "shared");
        assert_eq!(written(&f), "Server: x\r\nContent-Length: 0\r\n");
    }

    #[test]
    fn a_dropped_field_between_kept_ones_is_left_out_of_a_copy() {
        let (mut f, tag) = fields(
            b"HTTP/1.1 200 OK\r\nA: 1\r\nConnection: x-secret, close\r\nX-Secret: s\r\n\
              Transfer-Encoding: chunked\r\nContent-Length: 5\r\nl5d-retryable: true\r\nB:  2 \r\n\r\n",
        );
        assert_eq!(tag, "copied");
        assert_eq!(f.length(), None, "chunked: no length");
        assert!(f.has_l5d());
        f.add_via();
        assert_eq!(
            written(&f),
            "A: 1\r\nl5d-retryable: true\r\nB:  2 \r\nvia: 1.1 strait\r\n"
        );
        assert_eq!(f.get(b"L5D-Retryable"), Some(&b"true"[..]));
    }

    #[test]
    fn bare_line_feeds_are_written_as_crlf() {
        let (f, tag) = fields(b"HTTP/1.1 204 No Content\nA: 1\nB: 2\n\n");
        assert_eq!(tag, "copied");
        assert_eq!(written(&f), "A: 1\r\nB: 2\r\n");
        let (f, _) = fields(b"HTTP/1.1 204 No Content\r\nA: 1\r\nB: 2\n\r\n");
        assert_eq!(written(&f), "A: 1\r\nB: 2\r\n");
        // In a copy, runs of CRLF lines go whole (their spaces kept), a
        // bare-LF line is written again.
        let (f, tag) =
            fields(b"HTTP/1.1 200 OK\r\nA: 1\r\nConnection: close\r\nB:  2 \r\nC: 3\nD: 4\r\n\r\n");
        assert_eq!(tag, "copied");
        assert_eq!(written(&f), "A: 1\r\nB:  2 \r\nC: 3\r\nD: 4\r\n");
    }

    #[test]
    fn no_fields_is_an_empty_block() {
        let (f, _) = fields(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        assert_eq!(written(&f), "");
        let (f, _) = fields(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(written(&f), "");
    }

    #[test]
    fn the_map_has_the_fields_first_then_its_own() {
        let (mut f, _) = fields(b"HTTP/1.1 200 OK\r\nVia: 1.1 up\r\nLocation: /a\r\n\r\n");
        f.add_via();
        let mut map = HeaderMap::new();
        map.append("x-own", HeaderValue::from_static("1"));
        map.append("x-own", HeaderValue::from_static("2"));
        f.into_map(&mut map);
        let all: Vec<(String, String)> = map
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let want = [
            ("via", "1.1 up"),
            ("via", "1.1 strait"),
            ("location", "/a"),
            ("x-own", "1"),
            ("x-own", "2"),
        ];
        let mut all = all;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(all, want);
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z0-9-]{0,12}",
            Just("Connection".to_string()),
            Just("Keep-Alive".to_string()),
            Just("TE".to_string()),
            Just("Upgrade".to_string()),
            Just("Transfer-Encoding".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the head, the block is well-formed CRLF lines that
        /// parse (with httparse, as the next hop would) to the head's
        /// end-to-end fields, in order, with their values.
        #[test]
        fn the_block_is_the_end_to_end_fields_in_order(
            list in prop::collection::vec((name(), "[ -~]{0,20}"), 0..10),
            bare_lf in any::<bool>(),
        ) {
            let eol = if bare_lf { "\n" } else { "\r\n" };
            let mut head = format!("HTTP/1.1 200 OK{eol}");
            for (n, v) in &list {
                let v = if n.eq_ignore_ascii_case("transfer-encoding") { "gzip" } else { v.as_str() };
                head.push_str(&format!("{n}: {v}{eol}"));
            }
            head.push_str(eol);
            let mut buf = BytesMut::from(head.as_bytes());
            let h = parse_head(&mut buf).unwrap().unwrap();
            let f = h.fields.unwrap();
            let mut block = Vec::new();
            f.write(&mut block);
            block.extend_from_slice(b"\r\n");
            let mut slots = [httparse::EMPTY_HEADER; 16];
            let mut parsed = httparse::Request::new(&mut slots);
            let mut req = b"GET / HTTP/1.1\r\n".to_vec();
            req.extend_from_slice(&block);
            prop_assert!(parsed.parse(&req).unwrap().is_complete());
            let got: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap()))
                .collect();
            let hop = ["connection", "keep-alive", "te", "upgrade", "transfer-encoding"];
            let want: Vec<(String, String)> = list
                .iter()
                .filter(|(n, _)| !hop.contains(&n.to_ascii_lowercase().as_str()))
                .filter(|(n, _)| !list.iter().any(|(c, v)| c.eq_ignore_ascii_case("connection")
                    && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(n))
                    && !n.eq_ignore_ascii_case("host")))
                .map(|(n, v)| (n.clone(), v.trim().to_string()))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
