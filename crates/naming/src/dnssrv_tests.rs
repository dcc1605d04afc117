#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, SRV};
use hickory_resolver::proto::rr::{Record, RecordType};
use std::net::Ipv4Addr;
use strait_dtab::Dtab;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::Interpreter;
use crate::inet::InetResolver;

/// How long a change may take to show before a test fails.
const WAIT: Duration = Duration::from_secs(10);
/// The tests' refresh interval.
const TICK: Duration = Duration::from_millis(50);

/// How the test server answers an SRV question.
#[derive(Clone)]
enum Answer {
    /// These `(target, port)` records; with the targets' addresses in
    /// the additional section when `glue`.
    Srv(Vec<(&'static str, u16)>, bool),
    NxDomain,
    /// NOERROR with no records.
    Empty,
    ServFail,
    /// No answer at all.
    Silent,
}

#[derive(Default)]
struct Zone {
    srv: HashMap<String, Answer>,
    hosts: HashMap<String, Vec<IpAddr>>,
    /// Questions seen, by `(name, type)`.
    asked: HashMap<(String, RecordType), usize>,
    /// UDP answers with more records than this are truncated.
    udp_limit: Option<usize>,
    tcp_answers: usize,
}

/// A tiny authoritative DNS server on 127.0.0.1, UDP and TCP on one
/// port, answering from a [`Zone`] the test edits.
struct Server {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn fqdn(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

impl Server {
    async fn start() -> Server {
        // TCP and UDP on the same port number.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let z = zone.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                if let Some(out) = answer(&z, &buf[..n], false) {
                    let _ = udp.send_to(&out, from).await;
                }
            }
        });
        let z = zone.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    continue;
                };
                let z = z.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if s.read_exact(&mut msg).await.is_err() {
                            return;
                        }
                        if let Some(out) = answer(&z, &msg, true) {
                            let len = u16::try_from(out.len()).unwrap().to_be_bytes();
                            if s.write_all(&len).await.is_err() || s.write_all(&out).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            zone,
            tasks: vec![udp_task.abort_handle(), tcp_task.abort_handle()],
        }
    }

    fn srv(&self, name: &str, answer: Answer) {
        self.zone.lock().unwrap().srv.insert(fqdn(name), answer);
    }

    fn host(&self, name: &str, ips: &[&str]) {
        let ips = ips.iter().map(|i| i.parse().unwrap()).collect();
        self.zone.lock().unwrap().hosts.insert(fqdn(name), ips);
    }

    fn asked(&self, name: &str, t: RecordType) -> usize {
        let zone = self.zone.lock().unwrap();
        zone.asked.get(&(fqdn(name), t)).copied().unwrap_or(0)
    }

    fn namer(&self) -> DnsSrvNamer {
        DnsSrvNamer::new(TICK, &[self.addr]).unwrap()
    }
}

/// The server's answer to the query `bytes`, if it answers.
fn answer(zone: &Mutex<Zone>, bytes: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let req = Message::from_vec(bytes).ok()?;
    let q = req.queries.first()?.clone();
    let name = fqdn(&q.name().to_ascii());
    let mut zone = zone.lock().unwrap();
    *zone
        .asked
        .entry((name.clone(), q.query_type()))
        .or_default() += 1;
    let mut resp = Message::response(req.metadata.id, OpCode::Query);
    resp.metadata.authoritative = true;
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.add_query(q.clone());
    let record =
        |n: &str, data: RData| Record::from_rdata(DnsName::from_ascii(n).unwrap(), 0, data);
    let ip_data = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => RData::A(A(*v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
    };
    match q.query_type() {
        RecordType::SRV => match zone.srv.get(&name).cloned() {
            Some(Answer::Srv(records, glue)) => {
                for (target, port) in &records {
                    let srv = SRV::new(1, 1, *port, DnsName::from_ascii(fqdn(target)).unwrap());
                    resp.add_answer(record(&name, RData::SRV(srv)));
                    if glue {
                        for ip in zone.hosts.get(&fqdn(target)).into_iter().flatten() {
                            resp.add_additional(record(&fqdn(target), ip_data(ip)));
                        }
                    }
                }
            }
            Some(Answer::Empty) => {}
            Some(Answer::ServFail) => resp.metadata.response_code = ResponseCode::ServFail,
            Some(Answer::Silent) => return None,
            Some(Answer::NxDomain) | None => {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
        },
        t @ (RecordType::A | RecordType::AAAA) => match zone.hosts.get(&name) {
            Some(ips) => {
                for ip in ips {
                    if (t == RecordType::A) == ip.is_ipv4() {
                        resp.add_answer(record(&name, ip_data(ip)));
                    }
                }
            }
            None => resp.metadata.response_code = ResponseCode::NXDomain,
        },
        _ => resp.metadata.response_code = ResponseCode::NotImp,
    }
    if tcp {
        zone.tcp_answers += 1;
    } else if zone.udp_limit.is_some_and(|l| resp.answers.len() > l) {
        resp = resp.truncate();
    }
    resp.to_vec().ok()
}

fn prefix() -> Path {
    Path::read("/#/io.l5d.dnssrv").unwrap()
}

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

use crate::testing::{addrs, bound, is_bound, is_neg};

async fn wait_state(
    act: &mut Activity,
    what: &str,
    f: impl FnMut(&State<LookupTree>) -> bool,
) -> State<LookupTree> {
    crate::testing::wait_state(act, WAIT, what, f).await
}

async fn wait_addr(var: &mut crate::AddrVar, what: &str, f: impl FnMut(&Addr) -> bool) -> Addr {
    crate::testing::wait_addr(var, WAIT, what, f).await
}

/// Sets up `web.service.consul` with two instances, as Consul answers.
async fn consul_like() -> Server {
    let server = Server::start().await;
    server.host("node1.node.dc1.consul", &["127.0.0.11"]);
    server.host("node2.node.dc1.consul", &["127.0.0.12"]);
    server.srv(
        "web.service.consul",
        Answer::Srv(
            vec![
                ("node2.node.dc1.consul", 8081),
                ("node1.node.dc1.consul", 8080),
            ],
            true,
        ),
    );
    server
}

#[test]
fn dns_hosts_take_an_ip_and_an_optional_port() {
    for (text, want) in [
        ("10.0.0.2", "10.0.0.2:53"),
        ("127.0.0.1:8600", "127.0.0.1:8600"),
        ("::1", "[::1]:53"),
        ("[::1]", "[::1]:53"),
        ("[fd00::2]:8600", "[fd00::2]:8600"),
    ] {
        assert_eq!(
            parse_dns_host(text).map(|a| a.to_string()),
            Ok(want.to_owned()),
            "{text:?} is a DNS server address"
        );
    }
    for bad in [
        "",
        "dns.example",
        "dns.example:53",
        "10.0.0.2:",
        "10.0.0.2:0",
        "10.0.0.2:65536",
        "::1:53x",
        "[::1]:",
        "10.0.0.2 ",
        "[10.0.0.2]:53",
    ] {
        assert!(
            parse_dns_host(bad).is_err(),
            "{bad:?} must be refused, got {:?}",
            parse_dns_host(bad)
        );
    }
    let e = parse_dns_host("dns.example").unwrap_err();
    assert!(
        e.contains("'dns.example'") && e.contains("host names are not supported"),
        "the error quotes the entry and says why: {e}"
    );
}

#[test]
fn srv_names_must_be_dns_names() {
    for ok in [
        "web.service.consul",
        "_http._tcp.web.example",
        "Web.Service.Consul.",
        "x",
    ] {
        assert!(srv_name(ok.as_bytes()).is_some(), "{ok:?} is a DNS name");
    }
    assert_eq!(
        srv_name(b"Web.Service.Consul").as_deref(),
        Some("web.service.consul"),
        "names are compared case-insensitively"
    );
    let long_label = "a".repeat(64);
    let long_name = ["a".repeat(60).as_str(); 5].join(".");
    for bad in [
        &b""[..],
        b".",
        b"a..b",
        b".a",
        b"a b",
        b"a/b",
        b"a\0b",
        b"\xff",
        b"*.example",
        long_label.as_bytes(),
        long_name.as_bytes(),
    ] {
        assert!(srv_name(bad).is_none(), "{bad:?} is not a DNS name");
    }
}

#[tokio::test]
async fn an_srv_answer_binds_its_targets_from_the_additional_section() {
    let server = consul_like().await;
    let namer = server.namer();
    let mut act = namer.lookup(&prefix(), &path("/web.service.consul/x/y"));
    let state = wait_state(&mut act, "the first answer", |s| {
        !matches!(s, State::Pending)
    })
    .await;
    let b = bound(&state);
    assert_eq!(
        b.id,
        path("/#/io.l5d.dnssrv/web.service.consul"),
        "the id is the prefix and the SRV name"
    );
    assert_eq!(b.residual, path("/x/y"), "the rest is residual");
    let addr = b.addr.borrow().clone();
    assert_eq!(
        addrs(&addr),
        ["127.0.0.11:8080", "127.0.0.12:8081"],
        "each target's address with its SRV port, sorted"
    );
    let Addr::Bound(eps) = addr else {
        unreachable!()
    };
    assert!(
        eps.iter().all(|e| e.weight == 1.0),
        "every address weighs 1.0"
    );
    assert_eq!(
        server.asked("node1.node.dc1.consul", RecordType::A)
            + server.asked("node1.node.dc1.consul", RecordType::AAAA),
        0,
        "the additional section's addresses are used without asking"
    );
}

#[tokio::test]
async fn targets_without_additional_records_are_resolved() {
    let server = Server::start().await;
    server.host("a.example", &["127.0.0.21", "::1"]);
    server.host("b.example", &["127.0.0.22"]);
    server.host("gone.example", &[]);
    server.srv(
        "_http._tcp.web.example",
        Answer::Srv(
            vec![
                ("a.example", 80),
                ("b.example", 81),
                ("gone.example", 82),
                ("nx.example", 83),
            ],
            false,
        ),
    );
    let namer = server.namer();
    let mut act = namer.lookup(&prefix(), &path("/_http._tcp.web.example"));
    let state = wait_state(&mut act, "the first answer", |s| {
        !matches!(s, State::Pending)
    })
    .await;
    assert_eq!(
        addrs(&bound(&state).addr.borrow()),
        ["127.0.0.21:80", "127.0.0.22:81", "[::1]:80"],
        "A and AAAA of each target; targets without addresses are skipped"
    );
    assert!(server.asked("a.example", RecordType::A) >= 1);
    assert!(server.asked("a.example", RecordType::AAAA) >= 1);
}

#[tokio::test]
async fn nxdomain_and_empty_answers_are_neg() {
    let server = Server::start().await;
    server.srv("empty.example", Answer::Empty);
    server.srv("dot.example", Answer::Srv(vec![(".", 80)], true));
    server.srv(
        "nowhere.example",
        Answer::Srv(vec![("nx.example", 80)], false),
    );
    let namer = server.namer();
    for (name, reason) in [
        ("nope.service.consul", "NXDOMAIN"),
        ("empty.example", "no SRV records"),
        ("dot.example", "no usable SRV records"),
        (
            "nowhere.example",
            "no SRV target has an address: nx.example.",
        ),
    ] {
        let mut act = namer.lookup(&prefix(), &Path::utf8(&[name]));
        wait_state(&mut act, name, |s| !matches!(s, State::Pending)).await;
        assert!(is_neg(&act.borrow()), "{name} is Neg ({reason})");
        assert_eq!(
            namer.state()["names"][name]["reason"],
            reason,
            "state() says why {name} is Neg"
        );
    }
    for bad in [Path::empty(), Path::from_elems([&b"a b"[..]]).unwrap()] {
        assert!(
            is_neg(&namer.lookup(&prefix(), &bad).borrow()),
            "a path that cannot name an SRV record ({bad}) is Neg at once"
        );
    }
}

#[tokio::test]
async fn changes_are_published_and_neg_flips_the_lookup() {
    let server = consul_like().await;
    let namer = server.namer();
    let mut act = namer.lookup(&prefix(), &path("/web.service.consul"));
    let state = wait_state(&mut act, "the first answer", is_bound).await;
    let mut var = bound(&state).addr.clone();
    var.borrow_and_update();

    // Unchanged answers (in another order) publish nothing.
    server.srv(
        "web.service.consul",
        Answer::Srv(
            vec![
                ("node1.node.dc1.consul", 8080),
                ("node2.node.dc1.consul", 8081),
            ],
            true,
        ),
    );
    let before = server.asked("web.service.consul", RecordType::SRV);
    tokio::time::timeout(WAIT, async {
        while server.asked("web.service.consul", RecordType::SRV) < before + 3 {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .unwrap();
    assert!(
        !var.has_changed().unwrap(),
        "the same set, shuffled, is not a change"
    );

    // A new instance changes the address set, not the lookup.
    server.host("node3.node.dc1.consul", &["127.0.0.13"]);
    server.srv(
        "web.service.consul",
        Answer::Srv(
            vec![
                ("node1.node.dc1.consul", 8080),
                ("node2.node.dc1.consul", 8081),
                ("node3.node.dc1.consul", 8082),
            ],
            true,
        ),
    );
    let addr = wait_addr(
        &mut var,
        "the third instance",
        |a| matches!(a, Addr::Bound(e) if e.len() == 3),
    )
    .await;
    assert_eq!(
        addrs(&addr),
        ["127.0.0.11:8080", "127.0.0.12:8081", "127.0.0.13:8082"]
    );
    assert!(
        !act.has_changed().unwrap(),
        "a new address set leaves the lookup (and bindings) alone"
    );

    // The service going away makes the lookup Neg.
    server.srv("web.service.consul", Answer::NxDomain);
    wait_state(&mut act, "NXDOMAIN", is_neg).await;
    assert_eq!(
        *var.borrow(),
        Addr::Neg,
        "whoever still holds the address set sees Neg"
    );

    // And coming back binds it again.
    server.srv(
        "web.service.consul",
        Answer::Srv(vec![("node1.node.dc1.consul", 8080)], true),
    );
    let state = wait_state(&mut act, "the service's return", is_bound).await;
    assert_eq!(addrs(&bound(&state).addr.borrow()), ["127.0.0.11:8080"]);
}

#[tokio::test]
async fn failures_keep_the_last_answer() {
    let server = consul_like().await;
    let namer = server.namer();
    let mut act = namer.lookup(&prefix(), &path("/web.service.consul"));
    let state = wait_state(&mut act, "the first answer", is_bound).await;
    let mut var = bound(&state).addr.clone();
    let good = var.borrow_and_update().clone();

    server.srv("web.service.consul", Answer::ServFail);
    tokio::time::timeout(WAIT, async {
        while !namer.state()["names"]["web.service.consul"]["failing"]
            .as_bool()
            .unwrap()
        {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .expect("the SERVFAIL must show in state()");
    let before = server.asked("web.service.consul", RecordType::SRV);
    tokio::time::timeout(WAIT, async {
        while server.asked("web.service.consul", RecordType::SRV) < before + 3 {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .unwrap();
    assert!(
        !var.has_changed().unwrap() && *var.borrow() == good,
        "SERVFAIL keeps the last good set"
    );
    assert!(!act.has_changed().unwrap(), "and the lookup");
    let state = namer.state();
    let e = &state["names"]["web.service.consul"];
    assert_eq!(e["state"], "bound");
    assert!(
        e["lastError"]["error"]
            .as_str()
            .unwrap()
            .contains("SRV query failed"),
        "state() carries the last error: {e}"
    );
    assert!(e["lastRefresh"]["atMs"].as_u64().unwrap() > 0);

    // A server that does not answer at all: the same.
    server.srv("web.service.consul", Answer::Silent);
    let silent_from = server.asked("web.service.consul", RecordType::SRV);
    tokio::time::timeout(WAIT * 2, async {
        while server.asked("web.service.consul", RecordType::SRV) < silent_from + 2 {
            tokio::time::sleep(TICK).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(*var.borrow(), good, "a timeout keeps the last good set");

    server.srv(
        "web.service.consul",
        Answer::Srv(vec![("node1.node.dc1.consul", 8080)], true),
    );
    wait_addr(
        &mut var,
        "the recovery",
        |a| matches!(a, Addr::Bound(e) if e.len() == 1),
    )
    .await;
    assert_eq!(
        namer.state()["names"]["web.service.consul"]["failing"],
        false
    );
}

#[tokio::test]
async fn a_name_that_never_answered_is_neg() {
    let server = Server::start().await;
    server.srv("web.service.consul", Answer::ServFail);
    let namer = server.namer();
    let mut act = namer.lookup(&prefix(), &path("/web.service.consul"));
    assert!(
        matches!(*act.borrow(), State::Pending),
        "pending until the first poll"
    );
    wait_state(&mut act, "the first poll", is_neg).await;
    assert_eq!(
        namer.state()["names"]["web.service.consul"]["reason"],
        "never answered"
    );

    // Nothing listens on this one.
    let dead = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let namer = DnsSrvNamer::new(TICK, &[dead]).unwrap();
    let mut act = namer.lookup(&prefix(), &path("/web.service.consul"));
    wait_state(&mut act, "the unreachable server", is_neg).await;
}

#[tokio::test]
async fn lookups_of_one_name_share_one_poll() {
    let server = consul_like().await;
    let namer = server.namer();
    let mut a = namer.lookup(&prefix(), &path("/web.service.consul/a"));
    let b = namer.lookup(&prefix(), &path("/Web.Service.Consul/b"));
    let a2 = namer.lookup(&prefix(), &path("/web.service.consul/a"));
    assert!(a.same_channel(&a2), "one live answer per looked-up path");
    let state = wait_state(&mut a, "the first answer", is_bound).await;
    let state_b = b.borrow().clone();
    assert!(
        bound(&state).addr.same_channel(&bound(&state_b).addr),
        "one address set per SRV name, whatever the case or residual"
    );
    assert_eq!(
        bound(&state_b).id,
        path("/#/io.l5d.dnssrv/Web.Service.Consul"),
        "the id keeps the element as written"
    );
    tokio::time::sleep(TICK * 10).await;
    let asked = server.asked("web.service.consul", RecordType::SRV);
    assert!(
        (2..=12).contains(&asked),
        "one poll per interval for the name, not one per lookup: {asked} in 10 intervals"
    );
    assert_eq!(namer.shared.lock().len(), 1);
}

#[tokio::test]
async fn names_nobody_watches_stop_polling() {
    let server = Server::start().await;
    let namer = server.namer();
    let kept = namer.lookup(&prefix(), &path("/kept.example"));
    drop(namer.lookup(&prefix(), &path("/bogus.example")));
    tokio::time::timeout(WAIT, async {
        while namer.shared.lock().len() > 1 {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .expect("the unwatched name must be dropped");
    let asked = server.asked("bogus.example", RecordType::SRV);
    tokio::time::sleep(TICK * 5).await;
    assert_eq!(
        server.asked("bogus.example", RecordType::SRV),
        asked,
        "a name nobody watches is not asked again"
    );
    // Timing on a loaded machine varies: wait (bounded) for two more polls.
    let kept_asked = server.asked("kept.example", RecordType::SRV);
    tokio::time::timeout(WAIT, async {
        while server.asked("kept.example", RecordType::SRV) < kept_asked + 2 {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .expect("a watched name is still polled");
    assert!(namer.shared.lock().contains_key("kept.example"));

    // A held address set keeps its name polled after the lookup goes.
    server.host("a.example", &["127.0.0.1"]);
    server.srv("held.example", Answer::Srv(vec![("a.example", 80)], true));
    let mut act = namer.lookup(&prefix(), &path("/held.example"));
    let state = wait_state(&mut act, "the first answer", is_bound).await;
    let var = bound(&state).addr.clone();
    drop((act, state));
    let asked = server.asked("held.example", RecordType::SRV);
    tokio::time::timeout(WAIT, async {
        while server.asked("held.example", RecordType::SRV) <= asked + 1 {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .expect("a held address set is kept fresh");
    drop(var);
    tokio::time::timeout(WAIT, async {
        while namer.shared.lock().contains_key("held.example") {
            tokio::time::sleep(TICK / 5).await;
        }
    })
    .await
    .expect("dropping the last address set stops the polling");
    drop(kept);
}

#[tokio::test]
async fn one_off_names_do_not_pile_up_until_their_first_answer() {
    let server = Server::start().await;
    server.host("a.example", &["127.0.0.1"]);
    server.srv("kept.example", Answer::Srv(vec![("a.example", 80)], true));
    let namer = server.namer();
    let mut kept = namer.lookup(&prefix(), &path("/kept.example"));
    // Names asked of a server that never answers: without pruning each
    // would hold an entry and a poll task until its query times out.
    for i in 0..2_000 {
        server.srv(&format!("bogus-{i}.example"), Answer::Silent);
    }
    for i in 0..2_000 {
        drop(namer.lookup(&prefix(), &path(&format!("/bogus-{i}.example"))));
    }
    let names = namer.shared.lock().len();
    assert!(
        names <= 2 * crate::PRUNE_FLOOR,
        "names nobody holds are dropped as new ones come: {names}"
    );
    assert!(namer.shared.lock().contains_key("kept.example"));
    wait_state(&mut kept, "the kept name's answer", is_bound).await;
}

#[tokio::test]
async fn truncated_answers_are_asked_again_over_tcp() {
    let server = Server::start().await;
    let mut records = Vec::new();
    for i in 0..40u16 {
        let name: &'static str = Box::leak(format!("n{i}.node.dc1.consul").into_boxed_str());
        let ip = Ipv4Addr::new(127, 0, 1, u8::try_from(i + 1).unwrap());
        server.host(name, &[&ip.to_string()]);
        records.push((name, 9000 + i));
    }
    server.srv("big.service.consul", Answer::Srv(records, true));
    server.zone.lock().unwrap().udp_limit = Some(3);
    let namer = server.namer();
    let mut act = namer.lookup(&prefix(), &path("/big.service.consul"));
    let state = wait_state(&mut act, "the first answer", is_bound).await;
    assert_eq!(
        addrs(&bound(&state).addr.borrow()).len(),
        40,
        "all 40 instances, from the TCP answer"
    );
    assert!(server.zone.lock().unwrap().tcp_answers >= 1, "TCP was used");
}

#[tokio::test]
async fn state_reports_each_name() {
    let server = consul_like().await;
    let namer = server.namer();
    let mut a = namer.lookup(&prefix(), &path("/web.service.consul"));
    let mut b = namer.lookup(&prefix(), &path("/nope.service.consul"));
    wait_state(&mut a, "web", is_bound).await;
    wait_state(&mut b, "nope", is_neg).await;
    let state = namer.state();
    assert_eq!(
        state["dnsHosts"],
        serde_json::json!([server.addr.to_string()])
    );
    assert_eq!(state["systemResolver"], false);
    assert_eq!(state["refreshIntervalMs"], 50);
    let web = &state["names"]["web.service.consul"];
    assert_eq!(web["state"], "bound");
    assert_eq!(
        web["addresses"],
        serde_json::json!(["127.0.0.11:8080", "127.0.0.12:8081"])
    );
    assert_eq!(web["weights"], serde_json::json!([1.0, 1.0]));
    assert!(web["lastRefresh"]["agoMs"].is_u64(), "{web}");
    assert!(web["lastError"].is_null());
    assert_eq!(web["lookups"], 1);
    assert_eq!(state["names"]["nope.service.consul"]["state"], "neg");
}

#[tokio::test]
async fn a_neg_name_falls_back_through_the_dtab() {
    let server = consul_like().await;
    let interp = Interpreter::new(
        vec![(prefix(), Arc::new(server.namer()) as Arc<dyn Namer>)],
        InetResolver::default(),
    );
    let dtab =
        Dtab::read("/svc=>/$/inet/127.0.0.1/9999 | /#/io.l5d.dnssrv/nope.service.consul;/svc/web=>/#/io.l5d.dnssrv/web.service.consul")
            .unwrap();
    for (svc, want) in [
        ("/svc/web", "/#/io.l5d.dnssrv/web.service.consul"),
        ("/svc/other", "/$/inet/127.0.0.1/9999"),
    ] {
        let mut binding = interp.bind(&dtab, &path(svc), 100);
        let deadline = tokio::time::Instant::now() + WAIT;
        while matches!(binding.state, State::Pending) {
            let mut waiter = binding.clone();
            tokio::time::timeout_at(deadline, waiter.changed())
                .await
                .expect("the lookup must be answered");
            binding = interp.bind(&dtab, &path(svc), 100);
        }
        match &binding.state {
            State::Ok(NameTree::Leaf(b)) => assert_eq!(b.id, path(want), "{svc}"),
            other => panic!("{svc} must bind to {want}, got {other:?}"),
        }
    }
}

#[test]
fn needs_a_runtime_and_a_positive_interval() {
    assert!(
        matches!(
            DnsSrvNamer::new(TICK, &["127.0.0.1:53".parse().unwrap()]),
            Err(DnsSrvError::NoRuntime)
        ),
        "outside a tokio runtime creation fails instead of panicking"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    assert!(matches!(
        DnsSrvNamer::new(Duration::ZERO, &[]),
        Err(DnsSrvError::ZeroInterval)
    ));
}

#[tokio::test]
async fn the_system_resolver_is_read_when_no_hosts_are_given() {
    match DnsSrvNamer::new(DEFAULT_REFRESH_INTERVAL, &[]) {
        Ok(namer) => {
            assert!(!namer.servers().is_empty(), "servers come from resolv.conf");
            assert_eq!(namer.state()["systemResolver"], true);
        }
        // A machine without /etc/resolv.conf: the error says so.
        Err(e) => assert!(e.to_string().contains("/etc/resolv.conf"), "{e}"),
    }
}
