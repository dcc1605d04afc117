//! Trace context across hops: one trace id per request, read from the
//! formats a caller may send and written in the formats the backend
//! expects.
//!
//! * Linkerd 1's own (`io.l5d.default`): `l5d-ctx-trace` (standard base64
//!   of 32 big-endian bytes: span id, parent id, trace id's low 64 bits,
//!   flags; or 40 bytes with the trace id's high 64 bits appended; flags 1
//!   debug, 2 sampling known, 4 sampled), `l5d-sample` (a rate in \[0, 1\])
//!   and `l5d-reqid` (the trace id's low 64 bits, 16 lower-case hex digits).
//!   Always written on the way out, as Linkerd does.
//! * W3C Trace Context (<https://www.w3.org/TR/trace-context/>):
//!   `traceparent` and `tracestate`, written only when a valid
//!   `traceparent` came in; `tracestate` then passes unchanged.
//! * B3 (Zipkin): the `x-b3-*` headers or the single `b3` header, written
//!   only when B3 came in, in the form it came in.
//!
//! The trace id comes from `traceparent`, else B3, else `l5d-ctx-trace`,
//! else a new random 64-bit id; every format sent on carries that same id.
//! The caller's span id becomes the parent of this hop's span, which has a
//! new random id. Values that do not parse are ignored (and a `tracestate`
//! with them), as the specifications ask.
//!
//! Reading makes one pass over the header names; writing formats ids into
//! stack buffers and makes each header value once per request (retries
//! clone the header map, not the values' bytes).

use http::header::{HeaderMap, HeaderName, HeaderValue};

const L5D_CTX_TRACE: HeaderName = HeaderName::from_static("l5d-ctx-trace");
const L5D_SAMPLE: HeaderName = HeaderName::from_static("l5d-sample");
const L5D_REQID: HeaderName = HeaderName::from_static("l5d-reqid");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const B3: HeaderName = HeaderName::from_static("b3");
const X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
const X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");
const X_B3_PARENTSPANID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
const X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
const X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// `l5d-ctx-trace` flag: debug (always sampled).
pub const FLAG_DEBUG: u64 = 1;
/// `l5d-ctx-trace` flag: the sampling decision is known.
pub const FLAG_SAMPLING_KNOWN: u64 = 2;
/// `l5d-ctx-trace` flag: sampled (meaningful with [`FLAG_SAMPLING_KNOWN`]).
pub const FLAG_SAMPLED: u64 = 4;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A trace id: 64 bits, or 128 (`wide`) as W3C and newer B3 and Linkerd
/// send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId {
    /// The high 64 bits (0 for a 64-bit id).
    pub hi: u64,
    /// The low 64 bits: `l5d-reqid`.
    pub lo: u64,
    /// Whether the id has 128 bits.
    pub wide: bool,
}

impl TraceId {
    /// The id in lower-case hex: 32 digits when 128-bit, else 16.
    pub fn hex(&self) -> Hex {
        let mut h = Hex {
            buf: [0; 32],
            len: 16,
        };
        if self.wide {
            write_hex64(self.hi, &mut h.buf[..16]);
            write_hex64(self.lo, &mut h.buf[16..]);
            h.len = 32;
        } else {
            write_hex64(self.lo, &mut h.buf[..16]);
        }
        h
    }
}

/// A trace id in hex, on the stack.
#[derive(Clone, Copy, Debug)]
pub struct Hex {
    buf: [u8; 32],
    len: usize,
}

impl Hex {
    /// The digits.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// A span as a caller describes it in one format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace.
    pub trace: TraceId,
    /// The caller's span.
    pub span: u64,
    /// The caller's parent span, when the format carries one.
    pub parent: Option<u64>,
    /// The sampling decision, if any.
    pub sampled: Option<bool>,
    /// Debug (forces sampling).
    pub debug: bool,
}

/// What a B3 header set says: a span, or only a sampling decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B3In {
    /// Trace and span ids (and maybe parent and sampling).
    Span(SpanContext),
    /// Only `x-b3-sampled`/`x-b3-flags`, or a single `b3: 0|1|d`.
    Sampling {
        /// The decision, if any.
        sampled: Option<bool>,
        /// Debug.
        debug: bool,
    },
}

impl B3In {
    fn span(&self) -> Option<&SpanContext> {
        match self {
            B3In::Span(s) => Some(s),
            B3In::Sampling { .. } => None,
        }
    }

    fn sampling(&self) -> (Option<bool>, bool) {
        match self {
            B3In::Span(s) => (s.sampled, s.debug),
            B3In::Sampling { sampled, debug } => (*sampled, *debug),
        }
    }
}

/// How B3 came in, so it goes out the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B3Style {
    /// The single `b3` header.
    Single,
    /// The `x-b3-*` headers.
    Multi,
}

/// The trace context of one request: read (and taken off) the request by
/// [`Trace::take`], written on the way out by [`Trace::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The trace id, kept across hops and formats.
    pub id: TraceId,
    /// The caller's span: this hop's parent (a new trace's root span,
    /// whose id is the trace id's low 64 bits, when none came in).
    pub parent: u64,
    /// This hop's span, sent on.
    pub span: u64,
    /// The sampling decision, if known.
    pub sampled: Option<bool>,
    /// Debug.
    pub debug: bool,
    /// The flags of a valid incoming `traceparent`: write one out.
    w3c: Option<u8>,
    /// How B3 came in: write it out.
    b3: Option<B3Style>,
}

/// Which trace headers a request carries, from one pass over its names.
#[derive(Default)]
struct Present {
    l5d_ctx_trace: bool,
    l5d_sample: bool,
    traceparent: bool,
    tracestate: bool,
    b3: bool,
    x_b3: bool,
}

impl Present {
    fn scan(h: &HeaderMap) -> Present {
        let mut p = Present::default();
        for k in h.keys() {
            match k.as_str() {
                "l5d-ctx-trace" => p.l5d_ctx_trace = true,
                "l5d-sample" => p.l5d_sample = true,
                "traceparent" => p.traceparent = true,
                "tracestate" => p.tracestate = true,
                "b3" => p.b3 = true,
                "x-b3-traceid" | "x-b3-spanid" | "x-b3-parentspanid" | "x-b3-sampled"
                | "x-b3-flags" => p.x_b3 = true,
                _ => {}
            }
        }
        p
    }
}

/// The one value of `name`, if it is there exactly once.
fn single<'a>(h: &'a HeaderMap, name: &HeaderName) -> Option<&'a [u8]> {
    let mut all = h.get_all(name).iter();
    let first = all.next()?;
    match all.next() {
        None => Some(first.as_bytes()),
        Some(_) => None,
    }
}

impl Trace {
    /// Reads the request's trace context and takes the incoming trace
    /// headers off (`tracestate` stays when `traceparent` is valid, to pass
    /// unchanged); decides this hop's span.
    pub fn take(h: &mut HeaderMap) -> Trace {
        let p = Present::scan(h);
        let mut w3c = None;
        if p.traceparent {
            w3c = single(h, &TRACEPARENT).and_then(parse_traceparent);
            h.remove(TRACEPARENT);
        }
        if w3c.is_none() && p.tracestate {
            h.remove(TRACESTATE);
        }
        let mut b3 = None;
        if p.b3 {
            b3 = single(h, &B3)
                .and_then(parse_b3_single)
                .map(|b| (b, B3Style::Single));
            h.remove(B3);
        }
        if p.x_b3 {
            if b3.is_none() {
                b3 = parse_b3_multi(
                    single(h, &X_B3_TRACEID),
                    single(h, &X_B3_SPANID),
                    single(h, &X_B3_PARENTSPANID),
                    single(h, &X_B3_SAMPLED),
                    single(h, &X_B3_FLAGS),
                )
                .map(|b| (b, B3Style::Multi));
            }
            for n in [
                X_B3_TRACEID,
                X_B3_SPANID,
                X_B3_PARENTSPANID,
                X_B3_SAMPLED,
                X_B3_FLAGS,
            ] {
                h.remove(n);
            }
        }
        let mut l5d = None;
        if p.l5d_ctx_trace {
            l5d = h
                .get(L5D_CTX_TRACE)
                .and_then(|v| parse_l5d_ctx_trace(v.as_bytes()));
            h.remove(L5D_CTX_TRACE);
        }
        let mut rate = None;
        if p.l5d_sample {
            rate = h.get(L5D_SAMPLE).and_then(|v| parse_sample(v.as_bytes()));
            h.remove(L5D_SAMPLE);
        }
        Trace::decide(
            w3c,
            b3,
            l5d,
            rate,
            nonzero_u64(),
            nonzero_u64(),
            fastrand::f64(),
        )
    }

    /// The trace of a request that brought no trace context (no
    /// `traceparent`, B3, `l5d-ctx-trace` or `l5d-sample`): a new root,
    /// what [`Trace::take`] makes of such a request.
    pub fn fresh() -> Trace {
        Trace::decide(
            None,
            None,
            None,
            None,
            nonzero_u64(),
            nonzero_u64(),
            fastrand::f64(),
        )
    }

    /// The request's trace from what came in: `traceparent` first, then
    /// B3, then `l5d-ctx-trace`, else a new root `fresh`; `span` is this
    /// hop's span; `rate` (`l5d-sample`) decides sampling against `coin`.
    fn decide(
        w3c: Option<(SpanContext, u8)>,
        b3: Option<(B3In, B3Style)>,
        l5d: Option<SpanContext>,
        rate: Option<f64>,
        fresh: u64,
        span: u64,
        coin: f64,
    ) -> Trace {
        let ctx = w3c
            .as_ref()
            .map(|(c, _)| c)
            .or_else(|| b3.as_ref().and_then(|(b, _)| b.span()))
            .or(l5d.as_ref());
        let (id, parent) = match ctx {
            Some(c) => (c.trace, c.span),
            None => (
                TraceId {
                    hi: 0,
                    lo: fresh,
                    wide: false,
                },
                fresh,
            ),
        };
        // The decision of the format that named the trace, else of any.
        let b3_sampling = b3.as_ref().map(|(b, _)| b.sampling());
        let mut sampled = ctx
            .and_then(|c| c.sampled)
            .or_else(|| w3c.as_ref().and_then(|(c, _)| c.sampled))
            .or_else(|| b3_sampling.and_then(|(s, _)| s))
            .or_else(|| l5d.as_ref().and_then(|c| c.sampled));
        let debug = ctx.is_some_and(|c| c.debug) || b3_sampling.is_some_and(|(_, d)| d);
        if let Some(rate) = rate {
            sampled = Some(coin < rate);
        }
        Trace {
            id,
            parent,
            span,
            sampled,
            debug,
            w3c: w3c.map(|(_, flags)| flags),
            b3: b3.map(|(_, style)| style),
        }
    }

    /// The `l5d-ctx-trace` flags of the decision.
    pub fn flags(&self) -> u64 {
        let mut f = 0;
        if self.debug {
            f |= FLAG_DEBUG;
        }
        match self.sampled {
            Some(true) => f |= FLAG_SAMPLING_KNOWN | FLAG_SAMPLED,
            Some(false) => f |= FLAG_SAMPLING_KNOWN,
            None => {}
        }
        f
    }

    /// Sets the outgoing trace headers: `l5d-ctx-trace` and `l5d-reqid`
    /// always; `traceparent` and B3 when they came in.
    pub fn write(&self, h: &mut HeaderMap) {
        self.each(|name, v| insert(h, name, Some(v)));
    }

    /// The outgoing trace headers as header lines (`name: value\r\n`)
    /// appended to `buf`: the HTTP/1 client writes them straight into the
    /// request head, with no `HeaderMap` insert and no allocation. The
    /// request's own headers of these names must be gone: [`Trace::take`]
    /// took the incoming trace headers off, and `l5d-reqid` goes with
    /// [`crate::headers::strip_own_l5d`].
    pub fn write_lines(&self, buf: &mut Vec<u8>) {
        // The two lines every request carries are put together on the
        // stack and written at once.
        const CTX: &[u8] = b"l5d-ctx-trace: ";
        const REQID: &[u8] = b"\r\nl5d-reqid: ";
        let mut lines = [0u8; CTX.len() + 56 + REQID.len() + 16 + 2];
        let (ctx, rest) = lines.split_at_mut(CTX.len());
        ctx.copy_from_slice(CTX);
        let (value, rest) = rest.split_at_mut(56);
        let n = self.l5d_ctx_trace(value);
        let (reqid, rest) = rest.split_at_mut(REQID.len());
        reqid.copy_from_slice(REQID);
        write_hex64(self.id.lo, rest);
        rest[16..].copy_from_slice(b"\r\n");
        buf.extend_from_slice(&lines[..CTX.len() + n]);
        buf.extend_from_slice(&lines[CTX.len() + 56..]);
        self.each_optional(|name, v| {
            buf.extend_from_slice(name.as_str().as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(v);
            buf.extend_from_slice(b"\r\n");
        });
    }

    /// Each outgoing trace header, its name and value.
    fn each(&self, mut f: impl FnMut(HeaderName, &[u8])) {
        let mut ctx = [0u8; 56];
        let n = self.l5d_ctx_trace(&mut ctx);
        f(L5D_CTX_TRACE, ctx.get(..n).unwrap_or_default());
        let mut reqid = [0u8; 16];
        write_hex64(self.id.lo, &mut reqid);
        f(L5D_REQID, &reqid);
        self.each_optional(f);
    }

    /// The outgoing trace headers a configuration asks for (W3C, B3).
    fn each_optional(&self, mut f: impl FnMut(HeaderName, &[u8])) {
        if let Some(flags) = self.w3c {
            let mut tp = [0u8; 55];
            self.traceparent(flags, &mut tp);
            f(TRACEPARENT, &tp);
        }
        match self.b3 {
            None => {}
            Some(B3Style::Single) => {
                let mut buf = [0u8; 68];
                let n = self.b3_single(&mut buf);
                f(B3, buf.get(..n).unwrap_or_default());
            }
            Some(B3Style::Multi) => {
                let id = self.id.hex();
                f(X_B3_TRACEID, id.as_str().as_bytes());
                let mut span = [0u8; 16];
                write_hex64(self.span, &mut span);
                f(X_B3_SPANID, &span);
                write_hex64(self.parent, &mut span);
                f(X_B3_PARENTSPANID, &span);
                if self.debug {
                    f(X_B3_FLAGS, b"1");
                } else if let Some(s) = self.sampled {
                    f(X_B3_SAMPLED, if s { b"1" } else { b"0" });
                }
            }
        }
    }

    /// This hop's `l5d-ctx-trace` (base64 of 32 or 40 bytes) into `out`;
    /// its length.
    fn l5d_ctx_trace(&self, out: &mut [u8]) -> usize {
        let mut raw = [0u8; 40];
        raw[..8].copy_from_slice(&self.span.to_be_bytes());
        raw[8..16].copy_from_slice(&self.parent.to_be_bytes());
        raw[16..24].copy_from_slice(&self.id.lo.to_be_bytes());
        raw[24..32].copy_from_slice(&self.flags().to_be_bytes());
        raw[32..].copy_from_slice(&self.id.hi.to_be_bytes());
        let len = if self.id.wide { 40 } else { 32 };
        base64_encode(raw.get(..len).unwrap_or_default(), out)
    }

    /// `00-{trace}-{span}-{flags}`: the incoming flags, with the sampled
    /// bit as decided (`l5d-sample` may have changed it).
    fn traceparent(&self, flags: u8, out: &mut [u8; 55]) {
        let flags = match self.sampled {
            Some(true) => flags | 1,
            Some(false) => flags & !1,
            None => flags,
        };
        out[..3].copy_from_slice(b"00-");
        write_hex64(self.id.hi, &mut out[3..19]);
        write_hex64(self.id.lo, &mut out[19..35]);
        out[35] = b'-';
        write_hex64(self.span, &mut out[36..52]);
        out[52] = b'-';
        out[53] = HEX[usize::from(flags >> 4)];
        out[54] = HEX[usize::from(flags & 0xf)];
    }

    /// `{trace}-{span}[-{sampling}-{parent}]` into `out`; its length.
    fn b3_single(&self, out: &mut [u8; 68]) -> usize {
        let id = self.id.hex();
        let id = id.as_str().as_bytes();
        let mut n = id.len();
        out[..n].copy_from_slice(id);
        out[n] = b'-';
        write_hex64(self.span, &mut out[n + 1..n + 17]);
        n += 17;
        let sampling = if self.debug {
            b'd'
        } else {
            match self.sampled {
                Some(true) => b'1',
                Some(false) => b'0',
                // The parent can only follow a sampling state.
                None => return n,
            }
        };
        out[n] = b'-';
        out[n + 1] = sampling;
        out[n + 2] = b'-';
        write_hex64(self.parent, &mut out[n + 3..n + 19]);
        n + 19
    }
}

/// Inserts `v` (visible ASCII, so it always makes a header value).
fn insert(h: &mut HeaderMap, name: HeaderName, v: Option<&[u8]>) {
    if let Some(Ok(v)) = v.map(HeaderValue::from_bytes) {
        h.insert(name, v);
    }
}

/// A random id that is not 0 (0 means "none" in every format).
fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

/// Writes `v` as 16 lower-case hex digits into `out[..16]`.
pub fn write_hex64(v: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().take(16).enumerate() {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

fn hex_digit(b: u8, upper_ok: bool) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' if upper_ok => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Exactly 16 hex digits (lower case only unless `upper_ok`).
fn parse_hex64(s: &[u8], upper_ok: bool) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    s.iter()
        .try_fold(0u64, |acc, &b| Some(acc << 4 | hex_digit(b, upper_ok)?))
}

/// A 16- or 32-digit trace id; `None` if malformed or all zero.
fn parse_trace_id(s: &[u8], upper_ok: bool) -> Option<TraceId> {
    let id = match s.len() {
        16 => TraceId {
            hi: 0,
            lo: parse_hex64(s, upper_ok)?,
            wide: false,
        },
        32 => TraceId {
            hi: parse_hex64(s.get(..16)?, upper_ok)?,
            lo: parse_hex64(s.get(16..)?, upper_ok)?,
            wide: true,
        },
        _ => return None,
    };
    (id.hi != 0 || id.lo != 0).then_some(id)
}

/// A W3C `traceparent`: the caller's span and the trace flags. Version
/// `00` must be exactly 55 characters; a later version is read as `00`
/// where its first 55 characters allow (followed by the end or `-`); `ff`,
/// upper-case hex and all-zero ids are invalid.
pub fn parse_traceparent(s: &[u8]) -> Option<(SpanContext, u8)> {
    if s.len() < 55 {
        return None;
    }
    let version =
        u8::try_from(hex_digit(*s.first()?, false)? << 4 | hex_digit(*s.get(1)?, false)?).ok()?;
    match version {
        0xff => return None,
        0 if s.len() != 55 => return None,
        _ if s.len() > 55 && s.get(55) != Some(&b'-') => return None,
        _ => {}
    }
    if s.get(2) != Some(&b'-') || s.get(35) != Some(&b'-') || s.get(52) != Some(&b'-') {
        return None;
    }
    let trace = parse_trace_id(s.get(3..35)?, false)?;
    let span = parse_hex64(s.get(36..52)?, false)?;
    if span == 0 {
        return None;
    }
    let mut flags =
        u8::try_from(hex_digit(*s.get(53)?, false)? << 4 | hex_digit(*s.get(54)?, false)?).ok()?;
    if version != 0 {
        // Only the sampled bit is known to mean the same in a later version.
        flags &= 1;
    }
    let ctx = SpanContext {
        trace,
        span,
        parent: None,
        sampled: Some(flags & 1 == 1),
        debug: false,
    };
    Some((ctx, flags))
}

/// The single `b3` header: `{trace}-{span}[-{sampling}[-{parent}]]`, or a
/// sampling state alone (`0`, `1`, `d`).
pub fn parse_b3_single(s: &[u8]) -> Option<B3In> {
    let mut parts = s.split(|&b| b == b'-');
    let first = parts.next()?;
    let Some(span) = parts.next() else {
        let (sampled, debug) = b3_sampling_state(first)?;
        return Some(B3In::Sampling { sampled, debug });
    };
    let trace = parse_trace_id(first, true)?;
    let span = nonzero(parse_hex64(span, true)?)?;
    let (sampled, debug) = match parts.next() {
        None => (None, false),
        Some(state) => b3_sampling_state(state)?,
    };
    let parent = match parts.next() {
        None => None,
        Some(p) => Some(nonzero(parse_hex64(p, true)?)?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some(B3In::Span(SpanContext {
        trace,
        span,
        parent,
        sampled,
        debug,
    }))
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// `0`, `1` or `d` (debug).
fn b3_sampling_state(s: &[u8]) -> Option<(Option<bool>, bool)> {
    match s {
        b"0" => Some((Some(false), false)),
        b"1" => Some((Some(true), false)),
        b"d" => Some((Some(true), true)),
        _ => None,
    }
}

/// The `x-b3-*` headers: a trace id needs a span id (and a span id a
/// trace id); without either, `x-b3-sampled` (`1`/`true`, `0`/`false`)
/// and `x-b3-flags` (`1`: debug) still carry a decision.
pub fn parse_b3_multi(
    trace: Option<&[u8]>,
    span: Option<&[u8]>,
    parent: Option<&[u8]>,
    sampled: Option<&[u8]>,
    flags: Option<&[u8]>,
) -> Option<B3In> {
    let debug = flags == Some(b"1");
    let sampled = if debug {
        Some(true)
    } else {
        match sampled {
            Some(b"1") => Some(true),
            Some(b"0") => Some(false),
            Some(s) if s.eq_ignore_ascii_case(b"true") => Some(true),
            Some(s) if s.eq_ignore_ascii_case(b"false") => Some(false),
            _ => None,
        }
    };
    match (trace, span) {
        (None, None) => Some(B3In::Sampling { sampled, debug }),
        (Some(t), Some(s)) => Some(B3In::Span(SpanContext {
            trace: parse_trace_id(t, true)?,
            span: nonzero(parse_hex64(s, true)?)?,
            // A bad parent alone does not lose the trace.
            parent: parent.and_then(|p| parse_hex64(p, true)).and_then(nonzero),
            sampled,
            debug,
        })),
        _ => None,
    }
}

/// Linkerd's `l5d-ctx-trace`: base64 of 32 or 40 bytes.
pub fn parse_l5d_ctx_trace(s: &[u8]) -> Option<SpanContext> {
    let mut raw = [0u8; 40];
    let n = base64_decode(s, &mut raw)?;
    let word =
        |i: usize| -> Option<u64> { Some(u64::from_be_bytes(raw.get(i..i + 8)?.try_into().ok()?)) };
    let (span, parent, lo, flags) = (word(0)?, word(8)?, word(16)?, word(24)?);
    let trace = match n {
        32 => TraceId {
            hi: 0,
            lo,
            wide: false,
        },
        40 => TraceId {
            hi: word(32)?,
            lo,
            wide: true,
        },
        _ => return None,
    };
    let debug = flags & FLAG_DEBUG != 0;
    let sampled = if debug {
        Some(true)
    } else if flags & FLAG_SAMPLING_KNOWN != 0 {
        Some(flags & FLAG_SAMPLED != 0)
    } else {
        None
    };
    Some(SpanContext {
        trace,
        span,
        parent: Some(parent),
        sampled,
        debug,
    })
}

/// `l5d-sample`: a rate, clamped to \[0, 1\]; `None` if not a number.
pub fn parse_sample(s: &[u8]) -> Option<f64> {
    let r: f64 = std::str::from_utf8(s).ok()?.trim().parse().ok()?;
    (!r.is_nan()).then(|| r.clamp(0.0, 1.0))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding; the length written (whole quads only:
/// what fits in `out`).
fn base64_encode(src: &[u8], out: &mut [u8]) -> usize {
    // Three bytes to four letters at a time, by index: every request's
    // `l5d-ctx-trace` is one (an iterator chain cost twice as much).
    // In fixed-size chunks: no bounds checks in the loop.
    let sextet = |v: u32, shift: u32| B64[(v >> shift) as usize & 63];
    let (chunks, _) = src.as_chunks::<3>();
    let (outs, _) = out.as_chunks_mut::<4>();
    let mut n = 0;
    for (c, d) in chunks.iter().zip(outs.iter_mut()) {
        let v = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        *d = [sextet(v, 18), sextet(v, 12), sextet(v, 6), sextet(v, 0)];
        n += 4;
    }
    let rest = src.get(n / 4 * 3..).unwrap_or_default();
    if rest.is_empty() || rest.len() >= 3 {
        return n;
    }
    let Some(d) = out.get_mut(n..n + 4) else {
        return n;
    };
    let v = u32::from(rest[0]) << 16 | u32::from(rest.get(1).copied().unwrap_or(0)) << 8;
    d[0] = sextet(v, 18);
    d[1] = sextet(v, 12);
    d[2] = if rest.len() == 1 { b'=' } else { sextet(v, 6) };
    d[3] = b'=';
    n + 4
}

fn b64_value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Standard base64, padded or not, into `out`; the length decoded, or
/// `None` if malformed or longer than `out`.
fn base64_decode(src: &[u8], out: &mut [u8]) -> Option<usize> {
    let body = match src {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => rest,
        _ => src,
    };
    if body.len() % 4 == 1 || (src.len() != body.len() && !src.len().is_multiple_of(4)) {
        return None;
    }
    let mut n = 0;
    for chunk in body.chunks(4) {
        let mut v = 0u32;
        for &c in chunk {
            v = v << 6 | b64_value(c)?;
        }
        v <<= 6 * (4 - chunk.len() as u32);
        let bytes = v.to_be_bytes();
        let got = chunk.len() - 1;
        out.get_mut(n..n + got)?
            .copy_from_slice(bytes.get(1..1 + got)?);
        n += got;
    }
    Some(n)
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
