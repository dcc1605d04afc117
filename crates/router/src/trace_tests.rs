#![allow(clippy::unwrap_used)]
use super::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_HI: u64 = 0x4bf9_2f35_77b3_4da6;
const TRACE_LO: u64 = 0xa3ce_929d_0e0e_4736;
const CALLER: u64 = 0x00f0_67aa_0ba9_02b7;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

/// Takes the trace off `pairs` and writes it back: the outgoing headers.
fn hop(pairs: &[(&str, &str)]) -> (Trace, HeaderMap) {
    let mut h = headers(pairs);
    let t = Trace::take(&mut h);
    t.write(&mut h);
    (t, h)
}

fn ctx_of(h: &HeaderMap) -> SpanContext {
    parse_l5d_ctx_trace(get(h, "l5d-ctx-trace").unwrap().as_bytes()).unwrap()
}

#[test]
fn traceparent_version_00_parses() {
    let (c, flags) = parse_traceparent(TP.as_bytes()).unwrap();
    assert_eq!(
        c.trace,
        TraceId {
            hi: TRACE_HI,
            lo: TRACE_LO,
            wide: true
        }
    );
    assert_eq!(c.span, CALLER);
    assert_eq!(flags, 1);
    assert_eq!(c.sampled, Some(true));
    let (_, flags) =
        parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    assert_eq!(flags, 0);
}

#[test]
fn traceparent_invalid_cases_from_the_w3c_spec() {
    let bad = [
        // Version ff is forbidden.
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // All-zero trace id, all-zero parent id.
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // Upper-case hex.
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // Version 00 has nothing after the flags.
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
        // Too short, wrong separators, non-hex.
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",
        // A later version still needs a dash (or the end) after the flags.
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what",
        "",
    ];
    for s in bad {
        assert_eq!(parse_traceparent(s.as_bytes()), None, "{s:?}");
    }
}

#[test]
fn later_traceparent_versions_are_read_leniently() {
    let s = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds";
    let (c, flags) = parse_traceparent(s.as_bytes()).unwrap();
    assert_eq!((c.trace.lo, c.span), (TRACE_LO, CALLER));
    assert_eq!(
        flags, 1,
        "only the sampled bit is kept from a later version"
    );
    let s = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    assert_eq!(parse_traceparent(s.as_bytes()).unwrap().1, 0);
    // Re-emitted as version 00.
    let (_, h) = hop(&[(
        "traceparent",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
    )]);
    assert!(get(&h, "traceparent").unwrap().starts_with("00-4bf9"));
}

#[test]
fn a_traceparent_is_continued_with_a_new_span_and_the_same_trace_everywhere() {
    let (t, h) = hop(&[("traceparent", TP), ("tracestate", "congo=t61rcWkgMzE")]);
    assert_eq!(t.parent, CALLER);
    assert_ne!(t.span, CALLER);
    let tp = get(&h, "traceparent").unwrap();
    assert_eq!(tp.len(), 55);
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(tp.ends_with("-01"), "flags kept: {tp}");
    let (out, _) = parse_traceparent(tp.as_bytes()).unwrap();
    assert_eq!(out.span, t.span);
    assert_eq!(get(&h, "tracestate"), Some("congo=t61rcWkgMzE"));
    assert_eq!(get(&h, "l5d-reqid"), Some("a3ce929d0e0e4736"));
    let ctx = ctx_of(&h);
    assert_eq!(ctx.trace, t.id);
    assert_eq!((ctx.span, ctx.parent), (t.span, Some(CALLER)));
    assert_eq!(ctx.sampled, Some(true));
    assert!(!h.contains_key("b3") && !h.contains_key("x-b3-traceid"));
    assert_eq!(t.id.hex().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn an_invalid_traceparent_is_ignored_and_its_tracestate_dropped() {
    let (t, h) = hop(&[
        (
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]);
    assert!(!t.id.wide, "a new 64-bit root");
    assert_eq!(t.parent, t.id.lo, "a root's span is the trace id");
    assert!(!h.contains_key("traceparent") && !h.contains_key("tracestate"));
    // Repeated traceparent headers are invalid too.
    let (_, h) = hop(&[
        ("traceparent", TP),
        ("traceparent", TP),
        ("tracestate", "a=b"),
    ]);
    assert!(!h.contains_key("traceparent") && !h.contains_key("tracestate"));
    // A tracestate without a traceparent is dropped.
    let (_, h) = hop(&[("tracestate", "a=b")]);
    assert!(!h.contains_key("tracestate"));
}

#[test]
fn l5d_ctx_trace_round_trips_in_both_lengths() {
    for wide in [false, true] {
        let t = Trace {
            id: TraceId {
                hi: if wide { TRACE_HI } else { 0 },
                lo: TRACE_LO,
                wide,
            },
            parent: 7,
            span: 0x0102_0304_0506_0708,
            sampled: Some(true),
            debug: false,
            w3c: None,
            b3: None,
        };
        let mut buf = [0u8; 56];
        let n = t.l5d_ctx_trace(&mut buf);
        assert_eq!(n, if wide { 56 } else { 44 });
        let c = parse_l5d_ctx_trace(&buf[..n]).unwrap();
        assert_eq!(c.trace, t.id);
        assert_eq!((c.span, c.parent, c.sampled), (t.span, Some(7), Some(true)));
        // Unpadded base64 is read too.
        let unpadded = std::str::from_utf8(&buf[..n])
            .unwrap()
            .trim_end_matches('=');
        assert_eq!(parse_l5d_ctx_trace(unpadded.as_bytes()), Some(c));
    }
}

#[test]
fn l5d_ctx_trace_reads_finagles_bytes() {
    // span 1, parent 2, trace 3, flags 6 (sampling known, sampled), as
    // Finagle's TraceId.serialize writes them.
    let mut raw = [0u8; 32];
    raw[7] = 1;
    raw[15] = 2;
    raw[23] = 3;
    raw[31] = 6;
    let mut b = [0u8; 56];
    let n = base64_encode(&raw, &mut b);
    assert_eq!(&b[..n], b"AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAY=");
    let c = parse_l5d_ctx_trace(&b[..n]).unwrap();
    assert_eq!((c.span, c.parent, c.trace.lo), (1, Some(2), 3));
    assert_eq!(c.sampled, Some(true));
    raw[31] = 2;
    let n = base64_encode(&raw, &mut b);
    assert_eq!(parse_l5d_ctx_trace(&b[..n]).unwrap().sampled, Some(false));
    raw[31] = 0;
    let n = base64_encode(&raw, &mut b);
    assert_eq!(parse_l5d_ctx_trace(&b[..n]).unwrap().sampled, None);
    raw[31] = 1;
    let n = base64_encode(&raw, &mut b);
    assert!(parse_l5d_ctx_trace(&b[..n]).unwrap().debug);
}

#[test]
fn bad_l5d_ctx_trace_values_start_a_new_trace() {
    for bad in [
        "",
        "not base64!",
        "AAAA",                                             // 3 bytes
        "AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAA==",     // 31 bytes
        "AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAYA",     // 33 bytes
        "AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAY=AAAA", // padding inside
    ] {
        assert_eq!(parse_l5d_ctx_trace(bad.as_bytes()), None, "{bad:?}");
        let (t, h) = hop(&[("l5d-ctx-trace", bad)]);
        assert_eq!(t.parent, t.id.lo, "{bad:?}: a new root");
        assert_ne!(get(&h, "l5d-ctx-trace"), Some(bad));
    }
}

#[test]
fn l5d_ctx_trace_is_continued_with_a_child_span() {
    let (first, h) = hop(&[]);
    let ctx = get(&h, "l5d-ctx-trace").unwrap().to_owned();
    let (second, h) = hop(&[("l5d-ctx-trace", &ctx), ("l5d-reqid", "ignored")]);
    assert_eq!(second.id, first.id);
    assert_eq!(second.parent, first.span);
    assert_ne!(second.span, first.span);
    let out = ctx_of(&h);
    assert_eq!((out.span, out.parent), (second.span, Some(first.span)));
    let reqid = format!("{:016x}", first.id.lo);
    assert_eq!(get(&h, "l5d-reqid"), Some(reqid.as_str()));
    assert!(!h.contains_key("traceparent"), "no W3C header invented");
    assert!(!h.contains_key("b3") && !h.contains_key("x-b3-traceid"));
}

#[test]
fn l5d_sample_sets_sampling_and_is_removed() {
    assert_eq!(parse_sample(b"0.5"), Some(0.5));
    assert_eq!(parse_sample(b"7"), Some(1.0));
    assert_eq!(parse_sample(b"-1"), Some(0.0));
    assert_eq!(parse_sample(b"NaN"), None);
    assert_eq!(parse_sample(b"x"), None);
    let (t, h) = hop(&[("l5d-sample", "1")]);
    assert_eq!(t.sampled, Some(true));
    assert!(!h.contains_key("l5d-sample"));
    assert_eq!(ctx_of(&h).sampled, Some(true));
    let (t, h) = hop(&[("l5d-sample", "0"), ("traceparent", TP)]);
    assert_eq!(t.sampled, Some(false));
    assert!(get(&h, "traceparent").unwrap().ends_with("-00"));
    let (t, _) = hop(&[("l5d-sample", "junk")]);
    assert_eq!(t.sampled, None);
}

#[test]
fn b3_single_parses_every_form() {
    let id = "80f198ee56343ba864fe8b2a57d3eff7";
    let s = format!("{id}-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
    let B3In::Span(c) = parse_b3_single(s.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(c.trace.hex().as_str(), id);
    assert_eq!(c.span, 0xe457_b5a2_e4d8_6bd1);
    assert_eq!(c.parent, Some(0x05e3_ac9a_4f6e_3b90));
    assert_eq!(c.sampled, Some(true));
    let B3In::Span(c) = parse_b3_single(b"64fe8b2a57d3eff7-e457b5a2e4d86bd1").unwrap() else {
        panic!()
    };
    assert!(!c.trace.wide);
    assert_eq!((c.sampled, c.parent), (None, None));
    let B3In::Span(c) = parse_b3_single(b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-d").unwrap() else {
        panic!()
    };
    assert!(c.debug);
    assert_eq!(
        parse_b3_single(b"0"),
        Some(B3In::Sampling {
            sampled: Some(false),
            debug: false
        })
    );
    assert_eq!(
        parse_b3_single(b"d"),
        Some(B3In::Sampling {
            sampled: Some(true),
            debug: true
        })
    );
    for bad in [
        "",
        "2",
        "64fe8b2a57d3eff7",
        "64fe8b2a57d3eff7-",
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-x",
        "64fe8b2a57d3eff-e457b5a2e4d86bd1",
        "0000000000000000-e457b5a2e4d86bd1",
        "64fe8b2a57d3eff7-0000000000000000",
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-0000000000000000",
    ] {
        assert_eq!(parse_b3_single(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn b3_single_is_continued_as_b3_single() {
    let (t, h) = hop(&[(
        "b3",
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    )]);
    assert_eq!(t.parent, 0xe457_b5a2_e4d8_6bd1);
    let want = format!(
        "80f198ee56343ba864fe8b2a57d3eff7-{:016x}-1-e457b5a2e4d86bd1",
        t.span
    );
    assert_eq!(get(&h, "b3"), Some(want.as_str()));
    assert!(!h.contains_key("x-b3-traceid"));
    assert_eq!(get(&h, "l5d-reqid"), Some("64fe8b2a57d3eff7"));
    assert_eq!(ctx_of(&h).trace.hi, 0x80f1_98ee_5634_3ba8);
    // No sampling state: no parent either.
    let (t, h) = hop(&[("b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1")]);
    let want = format!("64fe8b2a57d3eff7-{:016x}", t.span);
    assert_eq!(get(&h, "b3"), Some(want.as_str()));
    // A sampling state alone: B3 goes on with this hop's ids.
    let (t, h) = hop(&[("b3", "d")]);
    let want = format!("{:016x}-{:016x}-d-{:016x}", t.id.lo, t.span, t.parent);
    assert_eq!(get(&h, "b3"), Some(want.as_str()));
    assert_eq!(ctx_of(&h).sampled, Some(true));
    assert!(ctx_of(&h).debug);
}

#[test]
fn b3_multi_parses_and_is_continued_as_b3_multi() {
    let (t, h) = hop(&[
        ("X-B3-TraceId", "463ac35c9f6413ad"),
        ("X-B3-SpanId", "A2FB4A1D1A96D312"),
        ("X-B3-ParentSpanId", "0020000000000001"),
        ("X-B3-Sampled", "1"),
    ]);
    assert_eq!(t.id.lo, 0x463a_c35c_9f64_13ad);
    assert!(!t.id.wide);
    assert_eq!(t.parent, 0xa2fb_4a1d_1a96_d312, "upper-case hex is read");
    assert_eq!(get(&h, "x-b3-traceid"), Some("463ac35c9f6413ad"));
    let span = format!("{:016x}", t.span);
    assert_eq!(get(&h, "x-b3-spanid"), Some(span.as_str()));
    assert_eq!(get(&h, "x-b3-parentspanid"), Some("a2fb4a1d1a96d312"));
    assert_eq!(get(&h, "x-b3-sampled"), Some("1"));
    assert!(!h.contains_key("x-b3-flags") && !h.contains_key("b3"));
    // 128-bit, debug, "false".
    let (t, h) = hop(&[
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-flags", "1"),
    ]);
    assert!(t.id.wide && t.debug);
    assert_eq!(
        get(&h, "x-b3-traceid"),
        Some("463ac35c9f6413ad48485a3953bb6124")
    );
    assert_eq!(get(&h, "x-b3-flags"), Some("1"));
    assert!(!h.contains_key("x-b3-sampled"), "debug implies sampled");
    let (t, _) = hop(&[
        ("x-b3-traceid", "463ac35c9f6413ad"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "false"),
    ]);
    assert_eq!(t.sampled, Some(false));
    // A trace id without a span id (or a bad one) is ignored.
    for pairs in [
        &[("x-b3-traceid", "463ac35c9f6413ad")][..],
        &[("x-b3-spanid", "a2fb4a1d1a96d312")][..],
        &[
            ("x-b3-traceid", "463ac35c9f6413a"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ][..],
    ] {
        let (t, h) = hop(pairs);
        assert_eq!(t.parent, t.id.lo, "{pairs:?}: a new root");
        assert!(!h.contains_key("x-b3-traceid"), "{pairs:?}");
    }
    // Sampling alone.
    let (t, h) = hop(&[("x-b3-sampled", "0")]);
    assert_eq!(t.sampled, Some(false));
    assert_eq!(get(&h, "x-b3-sampled"), Some("0"));
    assert!(h.contains_key("x-b3-traceid"));
}

#[test]
fn one_trace_id_wins_traceparent_then_b3_then_l5d() {
    let (first, h) = hop(&[]);
    let l5d = get(&h, "l5d-ctx-trace").unwrap().to_owned();
    let b3 = "463ac35c9f6413ad-a2fb4a1d1a96d312-1";
    let (t, h) = hop(&[("l5d-ctx-trace", &l5d), ("b3", b3), ("traceparent", TP)]);
    assert_eq!((t.id.hi, t.id.lo, t.parent), (TRACE_HI, TRACE_LO, CALLER));
    let want = format!(
        "4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-1-{CALLER:016x}",
        t.span
    );
    assert_eq!(
        get(&h, "b3"),
        Some(want.as_str()),
        "B3 carries the same trace"
    );
    assert_eq!(ctx_of(&h).trace, t.id);
    let (t, _) = hop(&[("l5d-ctx-trace", &l5d), ("b3", b3)]);
    assert_eq!(t.id.lo, 0x463a_c35c_9f64_13ad);
    let (t, _) = hop(&[("l5d-ctx-trace", &l5d), ("b3", "junk")]);
    assert_eq!(t.id, first.id);
}

#[test]
fn hex_and_base64_helpers() {
    let mut b = [0u8; 16];
    write_hex64(0x00ab_cdef_0123_4567, &mut b);
    assert_eq!(&b, b"00abcdef01234567");
    let id = TraceId {
        hi: 0,
        lo: u64::MAX,
        wide: false,
    };
    assert_eq!(id.hex().as_str(), "ffffffffffffffff");
    let mut out = [0u8; 8];
    for (src, enc) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg=="),
        (b"fooba", "Zm9vYmE="),
        (b"foobar", "Zm9vYmFy"),
    ] {
        let n = base64_encode(src, &mut out);
        assert_eq!(&out[..n], enc.as_bytes());
        let mut dec = [0u8; 8];
        let m = base64_decode(enc.as_bytes(), &mut dec).unwrap();
        assert_eq!(&dec[..m], src);
    }
}

/// The HTTP/1 client writes the trace as header lines: the same fields
/// and values as the map an h2 request gets, whatever the incoming form.
#[test]
fn trace_lines_are_the_headers_the_map_gets() {
    let incoming: [&[(&str, &str)]; 6] = [
        &[],
        &[("traceparent", TP)],
        &[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )],
        &[("b3", "d")],
        &[
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-Sampled", "0"),
        ],
        &[(
            "l5d-ctx-trace",
            "AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAYAAAAAAAAABA==",
        )],
    ];
    for pairs in incoming {
        let mut h = headers(pairs);
        let t = Trace::take(&mut h);
        let mut map = HeaderMap::new();
        t.write(&mut map);
        let mut lines = Vec::new();
        t.write_lines(&mut lines);
        let text = String::from_utf8(lines).unwrap();
        let mut got: Vec<(String, String)> = text
            .split_terminator("\r\n")
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_string(), v.to_string())
            })
            .collect();
        let mut want: Vec<(String, String)> = map
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "incoming {pairs:?}");
        assert!(text.ends_with("\r\n"));
    }
}

proptest::proptest! {
    /// Any bytes encode to padded base64 of the standard length that
    /// decodes back to them; a short `out` gets whole quads only.
    #[test]
    fn base64_round_trips(src in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), room in 0usize..100) {
        let mut out = [0u8; 100];
        let n = base64_encode(&src, &mut out);
        proptest::prop_assert_eq!(n, src.len().div_ceil(3) * 4);
        let mut dec = [0u8; 64];
        let m = base64_decode(&out[..n], &mut dec).unwrap();
        proptest::prop_assert_eq!(&dec[..m], &src[..]);
        let mut short = vec![0u8; room];
        let k = base64_encode(&src, &mut short);
        proptest::prop_assert_eq!(k % 4, 0);
        proptest::prop_assert!(k <= room);
        proptest::prop_assert_eq!(&short[..k], &out[..k]);
        proptest::prop_assert!(k == n || k + 4 > room);
    }
}
