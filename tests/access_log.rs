//! The access log with the real binary under load: logrotate's move +
//! SIGHUP (or SIGUSR1) and the size roll policy lose no line and write
//! none twice; the JSON format names the service, client and endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Behavior, Strait, curl, wrk_in_background};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

struct Setup {
    dir: tempfile::TempDir,
    conf: PathBuf,
    strait: Strait,
    backend: Backend,
}

/// Strait routing `hello` to a backend, logging to `<dir>/logs/access.log`
/// with the router keys `extra`.
fn setup(extra: &str) -> Setup {
    let backend = Backend::scripted("a", Behavior::Ok);
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(disco.join("hello"), format!("{}\n", backend.fs_line())).unwrap();
    let conf = dir.path().join("linkerd.yaml");
    std::fs::write(&conf, config(dir.path(), extra)).unwrap();
    let strait = Strait::start(BIN, &conf);
    Setup {
        dir,
        conf,
        strait,
        backend,
    }
}

fn config(dir: &Path, extra: &str) -> String {
    format!(
        "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n  httpAccessLog: {}\n{extra}  servers:\n  - port: 0\n",
        dir.join("disco").display(),
        dir.join("logs/access.log").display(),
    )
}

impl Setup {
    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn log(&self) -> PathBuf {
        self.logs().join("access.log")
    }

    fn metrics(&self) -> serde_json::Value {
        let r = curl(
            &[&format!("http://{}/admin/metrics.json", self.strait.admin)],
            &[],
        );
        serde_json::from_str(&r.body).unwrap_or_default()
    }

    /// The router's server `requests` counter: one per request answered,
    /// counted right after its access-log line was queued.
    fn served(&self) -> u64 {
        self.metrics()
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("rt/out/server/") && k.ends_with("/requests"))
            .filter_map(|(_, v)| v.as_u64())
            .sum()
    }

    fn metric(&self, name: &str) -> u64 {
        self.metrics()[name].as_u64().unwrap_or(0)
    }

    fn reloads(&self) -> u64 {
        ["applied", "rejected", "unchanged"]
            .iter()
            .map(|r| self.metric(&format!("config/reloads/{r}")))
            .sum()
    }

    /// wrk on `hello` (a Python backend: slow) and on `nosuch` (answered
    /// by Strait itself, 502: fast) at once; the requests of both.
    fn load(&self, secs: u32) -> std::thread::JoinHandle<u64> {
        let url = format!("http://{}/", self.strait.router());
        let hello = wrk_in_background(url.clone(), "hello", secs);
        let nosuch = wrk_in_background(url, "nosuch", secs);
        std::thread::spawn(move || {
            let (hello, nosuch) = (hello.join().unwrap(), nosuch.join().unwrap());
            assert_eq!(hello.non2xx, 0, "{}", hello.text);
            assert!(hello.requests > 50, "{}", hello.text);
            assert_eq!(nosuch.non2xx, nosuch.requests, "{}", nosuch.text);
            hello.requests + nosuch.requests
        })
    }

    /// Every line of every file in the log directory, by file name, once
    /// they add up to what the server answered (the writer is a thread).
    fn settled_lines(&self) -> (u64, Vec<(String, Vec<String>)>) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let served = self.served();
            let files = read_dir_lines(&self.logs());
            let n: usize = files.iter().map(|(_, l)| l.len()).sum();
            if n as u64 == served || Instant::now() > deadline {
                // A little longer: a line too many would show.
                std::thread::sleep(Duration::from_millis(300));
                return (self.served(), read_dir_lines(&self.logs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_dir_lines(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut files: Vec<(String, Vec<String>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                text.lines().map(str::to_owned).collect(),
            )
        })
        .collect();
    files.sort();
    files
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn logrotate_move_then_sighup_or_sigusr1_loses_no_line_under_load() {
    let s = setup("");
    let load = s.load(5);
    std::thread::sleep(Duration::from_millis(1200));

    // logrotate: mv, then `kill -HUP` (the config is unchanged).
    let reloads = s.reloads();
    std::fs::rename(s.log(), s.logs().join("access.log.1")).unwrap();
    s.strait.proc.signal("HUP");
    wait_for("a new access.log after SIGHUP", || s.log().exists());
    wait_for("the SIGHUP reload", || s.reloads() > reloads);
    assert_eq!(s.metric("config/reloads/unchanged"), 1);
    std::thread::sleep(Duration::from_millis(1200));

    // `kill -USR1`: reopens, reloads nothing.
    std::fs::rename(s.log(), s.logs().join("access.log.2")).unwrap();
    s.strait.proc.signal("USR1");
    wait_for("a new access.log after SIGUSR1", || s.log().exists());
    let load = load.join().unwrap();
    assert_eq!(s.reloads(), reloads + 1, "SIGUSR1 reloads nothing");

    let (served, files) = s.settled_lines();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["access.log", "access.log.1", "access.log.2"]);
    for (name, lines) in &files {
        assert!(!lines.is_empty(), "{name} has lines");
        for l in lines {
            assert!(
                (l.starts_with("hello 127.0.0.1 - - [")
                    && l.ends_with("] \"GET / HTTP/1.1\" 200 11 \"-\" \"-\""))
                    || (l.starts_with("nosuch 127.0.0.1 - - [")
                        && l.contains(" UTC] \"GET / HTTP/1.1\" 502 ")
                        && l.ends_with(" \"-\" \"-\"")),
                "{name}: a whole line: {l:?}"
            );
        }
    }
    let logged: usize = files.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(
        logged as u64,
        served,
        "one line per request served, none lost, none twice ({:?}; dropped {})",
        files.iter().map(|(n, l)| (n, l.len())).collect::<Vec<_>>(),
        s.metric("rt/out/access_log/dropped")
    );
    assert!(
        served >= load && load > 2000,
        "a real load: {load} requests"
    );
    assert_eq!(s.metric("rt/out/access_log/dropped"), 0);
}

#[test]
fn a_size_roll_policy_rolls_to_linkerds_names_and_loses_no_line() {
    let s = setup("  httpAccessLogRollPolicy: 64.kilobytes\n");
    let load = s.load(3).join().unwrap();
    let (served, files) = s.settled_lines();
    let logged: usize = files.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(
        logged as u64,
        served,
        "no line lost or twice across the rolls ({} files)",
        files.len()
    );
    assert!(load > 2000, "a real load: {load} requests");
    let rolled: Vec<&str> = files
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "access.log")
        .collect();
    assert!(rolled.len() >= 2, "rolled: {rolled:?}");
    for n in &rolled {
        // access-yyyyMMdd-HHmmss.log
        let stamp = n
            .strip_prefix("access-")
            .and_then(|r| r.strip_suffix(".log"))
            .unwrap_or_default();
        assert!(
            stamp.len() == 15
                && stamp.as_bytes()[8] == b'-'
                && stamp.bytes().filter(u8::is_ascii_digit).count() == 14,
            "Linkerd's name: {n}"
        );
    }
    let current = std::fs::metadata(s.log()).unwrap().len();
    assert!(current <= 64 * 1024, "{current}");

    // RotateCount, on reload: the next roll keeps the newest two.
    let before = s.reloads();
    std::fs::write(
        &s.conf,
        config(
            s.dir.path(),
            "  httpAccessLogRollPolicy: 64.kilobytes\n  httpAccessLogRotateCount: 2\n",
        ),
    )
    .unwrap();
    s.strait.proc.signal("HUP");
    wait_for("the reload", || s.reloads() > before);
    assert_eq!(s.metric("config/reloads/applied"), 1);
    s.load(1).join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let files = read_dir_lines(&s.logs());
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 3, "two rolled files kept: {names:?}");
    assert!(names.contains(&"access.log"), "{names:?}");
    assert!(!names.contains(&rolled[0]), "the oldest went: {names:?}");
}

#[test]
fn the_json_format_names_service_client_and_endpoint() {
    let s = setup("  httpAccessLogFormat: json\n");
    let url = format!("http://{}/a?b=c", s.strait.router());
    let r = curl(
        &["-H", "Host: hello", "-A", "t/1", "-e", "http://r/1", &url],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = curl(&["-H", "Host: nosuch", "-A", "t/2", &url], &[]);
    assert_eq!(r.status, 502, "{r:?}");
    let (_, files) = s.settled_lines();
    let lines = &files[0].1;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ok: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(ok["service"], "/svc/hello", "{ok}");
    assert_eq!(ok["client"], "/#/io.l5d.fs/hello", "{ok}");
    assert_eq!(ok["endpoint"], s.backend.addr.to_string(), "{ok}");
    assert_eq!(ok["uri"], "/a?b=c");
    assert_eq!(ok["host"], "hello", "{ok}");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["user_agent"], "t/1");
    assert_eq!(ok["referer"], "http://r/1");
    assert!(ok["duration_ms"].as_f64().unwrap() > 0.0, "{ok}");
    let failed: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(failed["status"], 502, "{failed}");
    assert_eq!(failed["service"], "/svc/nosuch", "{failed}");
    assert_eq!(failed["host"], "nosuch", "{failed}");
    assert!(failed["endpoint"].is_null(), "{failed}");
    assert_eq!(failed["user_agent"], "t/2", "{failed}");
    assert!(failed["referer"].is_null(), "{failed}");
}
