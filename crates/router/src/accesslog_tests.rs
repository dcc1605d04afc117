#![allow(clippy::unwrap_used)]

use super::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn dates_are_common_log_format_in_utc() {
    assert_eq!(clf_time(UNIX_EPOCH), "01/01/1970:00:00:00 +0000");
    let t = at(1_795_000_000); // date -u -d @1795000000
    assert_eq!(clf_time(t), "18/11/2026:11:06:40 +0000");
    let leap = at(951_782_400); // 2000-02-29
    assert_eq!(clf_time(leap), "29/02/2000:00:00:00 +0000");
}

#[test]
fn roll_policies_parse_as_twitter_server_does() {
    let ok = |s: &str| RollPolicy::parse(s).unwrap();
    assert_eq!(ok("never"), RollPolicy::Never);
    assert_eq!(ok("Hourly"), RollPolicy::Hourly);
    assert_eq!(ok("DAILY"), RollPolicy::Daily);
    assert_eq!(ok("sighup"), RollPolicy::SigHup);
    assert_eq!(ok("weekly(1)"), RollPolicy::Weekly(1));
    assert_eq!(ok("Weekly(7)"), RollPolicy::Weekly(7));
    assert_eq!(ok("100.megabytes"), RollPolicy::MaxSize(100 << 20));
    assert_eq!(ok("1.megabyte"), RollPolicy::MaxSize(1 << 20));
    assert_eq!(ok("10.KILOBYTES"), RollPolicy::MaxSize(10 << 10));
    assert_eq!(ok("512.bytes"), RollPolicy::MaxSize(512));
    assert_eq!(ok("1.byte"), RollPolicy::MaxSize(1));
    assert_eq!(ok("2.gigabytes"), RollPolicy::MaxSize(2 << 30));
    assert_eq!(ok("+3.kilobytes"), RollPolicy::MaxSize(3 << 10));
    for bad in [
        "weekly",
        "weekly()",
        "weekly(x)",
        "monthly",
        "",
        "10",
        "10.mb",
        "10.megabytes.x",
        "1.5.megabytes",
        "megabytes",
        ".megabytes",
    ] {
        assert_eq!(
            RollPolicy::parse(bad),
            Err(format!("Invalid log roll policy: {bad}")),
            "{bad}"
        );
    }
    for bad in ["weekly(0)", "weekly(8)", "weekly(12)"] {
        let e = RollPolicy::parse(bad).unwrap_err();
        assert!(
            e.starts_with(&format!("Invalid log roll policy: {bad}: ")),
            "{e}"
        );
    }
    for bad in ["0.bytes", "-5.megabytes", "20.exabytes"] {
        let e = RollPolicy::parse(bad).unwrap_err();
        assert!(
            e.starts_with(&format!("Invalid log roll policy: {bad}: ")),
            "{e}"
        );
    }
    // Display reads back.
    for p in [
        "never",
        "hourly",
        "daily",
        "weekly(3)",
        "sighup",
        "4096.bytes",
    ] {
        assert_eq!(ok(p).to_string(), p);
    }
}

#[test]
fn time_policies_roll_at_the_next_hour_midnight_or_weekday() {
    // 2026-11-18 (a Wednesday) 11:06:40 UTC.
    let t = at(1_795_000_000);
    let day = 1_795_000_000 - 40_000;
    assert_eq!(next_roll(RollPolicy::Hourly, t), Some(at(day + 12 * 3600)));
    assert_eq!(next_roll(RollPolicy::Daily, t), Some(at(day + 86_400)));
    // Thursday (5): tomorrow; Wednesday (4): in a week; Sunday (1): in 4 days.
    assert_eq!(next_roll(RollPolicy::Weekly(5), t), Some(at(day + 86_400)));
    assert_eq!(
        next_roll(RollPolicy::Weekly(4), t),
        Some(at(day + 7 * 86_400))
    );
    assert_eq!(
        next_roll(RollPolicy::Weekly(1), t),
        Some(at(day + 4 * 86_400))
    );
    assert_eq!(next_roll(RollPolicy::Never, t), None);
    assert_eq!(next_roll(RollPolicy::SigHup, t), None);
    assert_eq!(next_roll(RollPolicy::MaxSize(10), t), None);
    assert_eq!(roll_suffix(RollPolicy::Hourly, t), "20261118-11");
    assert_eq!(roll_suffix(RollPolicy::Daily, t), "20261118");
    assert_eq!(roll_suffix(RollPolicy::Weekly(2), t), "20261118");
    assert_eq!(roll_suffix(RollPolicy::MaxSize(1), t), "20261118-110640");
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn lines_in(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    for f in files(dir) {
        let text = std::fs::read_to_string(dir.join(&f)).unwrap();
        all.extend(text.lines().map(str::to_owned));
    }
    all.sort();
    all
}

#[test]
fn an_hourly_log_rolls_to_linkerds_names_and_keeps_rotate_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let options = FileOptions {
        roll: RollPolicy::Hourly,
        append: true,
        rotate_count: 2,
    };
    // 2026-11-18 11:06:40 UTC; 30 lines a minute for four hours.
    let start = 1_795_000_000;
    let mut sink = Sink::open(path.clone(), options, at(start)).unwrap();
    let mut written = Vec::new();
    for i in 0..(4 * 60 * 30) {
        let line = format!("line {i:05}\n");
        sink.write_line(line.as_bytes(), at(start + 2 * i));
        written.push(line.trim_end().to_owned());
    }
    sink.flush();
    assert_eq!(
        files(dir.path()),
        [
            "access-20261118-13.log",
            "access-20261118-14.log",
            "access.log"
        ],
        "rolled at 12:00, 13:00, 14:00, 15:00; the 11 and 12 o'clock files pruned"
    );
    let first = std::fs::read_to_string(dir.path().join("access-20261118-13.log")).unwrap();
    // 13:00:00 is 6800 s in (line 3400): the first line after it rolls.
    assert!(first.starts_with("line 03401\n"), "{}", &first[..20]);
    // The lines from then on are all there, once.
    let kept = lines_in(dir.path());
    assert_eq!(kept, written[3401..].to_vec());
}

#[test]
fn a_daily_log_with_rotate_count_minus_one_keeps_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let options = FileOptions {
        roll: RollPolicy::Daily,
        append: true,
        rotate_count: -1,
    };
    let start = 1_795_000_000;
    let mut sink = Sink::open(path, options, at(start)).unwrap();
    let mut written = Vec::new();
    for i in 0..10 {
        let line = format!("day {i}\n");
        sink.write_line(line.as_bytes(), at(start + i * 86_400));
        written.push(line.trim_end().to_owned());
    }
    sink.flush();
    let names = files(dir.path());
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(names[0], "access-20261118.log");
    assert_eq!(lines_in(dir.path()), written);
}

#[test]
fn a_size_log_rolls_before_the_line_that_would_overflow_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let options = FileOptions {
        roll: RollPolicy::MaxSize(100),
        append: true,
        rotate_count: -1,
    };
    let start = 1_795_000_000;
    let mut sink = Sink::open(path.clone(), options, at(start)).unwrap();
    let mut written = Vec::new();
    // 10-byte lines, ten a second: each second's files share a name.
    for i in 0..200u64 {
        let line = format!("line {i:04}\n");
        sink.write_line(line.as_bytes(), at(start + i / 10));
        written.push(line.trim_end().to_owned());
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    }
    sink.flush();
    let names = files(dir.path());
    assert!(
        names.contains(&"access-20261118-110640.log".to_owned()),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .all(|n| n == "access.log" || n.len() == "access-20261118-110640.log".len())
    );
    assert_eq!(lines_in(dir.path()), written, "no line lost, none twice");
}

#[test]
fn append_false_truncates_and_reopen_follows_a_moved_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    std::fs::write(&path, "old\n").unwrap();
    let options = FileOptions {
        append: false,
        ..FileOptions::default()
    };
    let mut sink = Sink::open(path.clone(), options, at(0)).unwrap();
    sink.write_line(b"one\n", at(1));
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    sink.write_line(b"two\n", at(2));
    sink.reopen();
    assert!(path.exists(), "reopened: a new file");
    sink.write_line(b"three\n", at(3));
    sink.reopen(); // not moved: appended to
    sink.write_line(b"four\n", at(4));
    sink.flush();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("access.log.1")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\nfour\n");
}

fn record(line: LineOptions) -> Record {
    let mut h = HeaderMap::new();
    h.insert(HOST, HeaderValue::from_static("hello"));
    h.insert(USER_AGENT, HeaderValue::from_static("curl/8 \"quoted\""));
    let uri: Uri = "/index.html?x=1".parse().unwrap();
    let mut fields = Fields::of(&Method::GET, uri, &h);
    fields.service = Some(HeaderValue::from_static("/svc/hello"));
    fields.client = Some(HeaderValue::from_static("/#/io.l5d.fs/hello"));
    fields.endpoint = Some("127.0.0.1:8080".parse().unwrap());
    Record {
        fields,
        remote: "10.0.0.7:50000".parse().unwrap(),
        status: 200,
        bytes: Some(11),
        trace: TraceId {
            hi: 0x0af7_6519_16cd_43dd,
            lo: 0x8448_eb21_1c80_319c,
            wide: true,
        },
        at: UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
        duration: Duration::from_micros(1_500),
        line,
    }
}

#[test]
fn the_default_line_is_linkerds_exactly() {
    let mut out = String::new();
    linkerd_line(&record(LineOptions::default()), &mut out);
    assert_eq!(
        out,
        "hello 10.0.0.7 - - [18/11/2026:11:06:40 UTC] \"GET /index.html?x=1 HTTP/1.1\" 200 11 \"-\" \"curl/8 \"quoted\"\"\n"
    );
    let mut r = record(LineOptions::default());
    r.fields.version = Version::HTTP_10;
    r.bytes = None;
    out.clear();
    linkerd_line(&r, &mut out);
    assert!(
        out.contains("\"GET /index.html?x=1 HTTP/1.0\" 200 - "),
        "{out}"
    );
    out.clear();
    linkerd_line(
        &record(LineOptions {
            format: Format::Linkerd,
            h2: true,
        }),
        &mut out,
    );
    assert_eq!(
        out,
        "hello 10.0.0.7 - - [18/11/2026:11:06:40 +0000] \"GET /index.html?x=1 HTTP/2\" 200 - \"-\" \"curl/8 \"quoted\"\"\n",
        "h2: numeric zone, HTTP/2, no byte count"
    );
}

#[test]
fn the_json_line_parses_back() {
    let mut out = String::new();
    let line = LineOptions {
        format: Format::Json,
        h2: false,
    };
    format_record(&record(line), &mut out);
    assert!(out.ends_with("}\n") && out.lines().count() == 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "ts": "2026-11-18T11:06:40.123Z",
            "duration_ms": 1.5,
            "method": "GET",
            "uri": "/index.html?x=1",
            "version": "HTTP/1.1",
            "host": "hello",
            "status": 200,
            "bytes": 11,
            "service": "/svc/hello",
            "client": "/#/io.l5d.fs/hello",
            "endpoint": "127.0.0.1:8080",
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "l5d_reqid": "8448eb211c80319c",
            "remote": "10.0.0.7:50000",
            "referer": null,
            "user_agent": "curl/8 \"quoted\"",
        })
    );
    // Strait's own answer: no names, no endpoint, no length; odd bytes kept.
    let mut r = record(line);
    r.fields.service = None;
    r.fields.client = None;
    r.fields.endpoint = None;
    r.fields.host = None;
    r.fields.referer = Some(HeaderValue::from_bytes(b"caf\xe9\t\\").unwrap());
    r.bytes = None;
    r.status = 502;
    out.clear();
    format_record(&r, &mut out);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 502);
    for k in ["service", "client", "endpoint", "host", "bytes"] {
        assert!(v[k].is_null(), "{k}: {out}");
    }
    assert_eq!(v["referer"], "caf\u{fffd}\t\\");
}

#[test]
fn refine_keeps_the_start_names_and_a_missing_host() {
    let uri: Uri = "http://auth.example/a".parse().unwrap();
    let mut f = Fields::of(&Method::POST, uri, &HeaderMap::new());
    assert_eq!(text(&f.host), "auth.example", "the authority when no Host");
    f.service = Some(HeaderValue::from_static("/svc/a"));
    let start = f.start;
    f.refine(Fields::of(
        &Method::POST,
        "/b".parse().unwrap(),
        &HeaderMap::new(),
    ));
    assert_eq!(text(&f.host), "auth.example");
    assert_eq!(f.uri, "/b");
    assert_eq!(f.start, start);
    assert!(f.service.is_some());
}

#[tokio::test]
async fn one_writer_per_path_and_reopen_all_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.log");
    let dropped = Arc::new(Counter::default());
    let a = AccessLog::open(
        &path,
        FileOptions::default(),
        LineOptions::default(),
        Arc::clone(&dropped),
    )
    .unwrap();
    let b = AccessLog::open(
        &path,
        FileOptions::default(),
        LineOptions {
            format: Format::Json,
            h2: false,
        },
        Arc::clone(&dropped),
    )
    .unwrap();
    assert!(a.tx.same_channel(&b.tx), "one writer for the path");
    let log = |l: &AccessLog| {
        let f = Fields::of(&Method::GET, "/".parse().unwrap(), &HeaderMap::new());
        f.log(
            l,
            "127.0.0.1:1".parse().unwrap(),
            200,
            None,
            &TraceId {
                hi: 0,
                lo: 1,
                wide: false,
            },
        );
    };
    log(&a);
    log(&b);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let wait = |p: &Path, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while read(p).lines().count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait(&path, 2);
    let moved = dir.path().join("shared.log.1");
    std::fs::rename(&path, &moved).unwrap();
    assert!(reopen_all() >= 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(path.exists(), "an idle writer reopens at once");
    log(&a);
    wait(&path, 1);
    let old = read(&moved);
    assert_eq!(old.lines().count(), 2, "{old}");
    assert!(
        old.lines().any(|l| l.starts_with('{')),
        "b writes JSON: {old}"
    );
    assert_eq!(read(&path).lines().count(), 1);
    assert_eq!(dropped.get(), 0);
}
