//! Network namespaces as hosts on a private test LAN, for multi-host
//! end-to-end tests (Linux; needs root and iproute2's `ip`).
//!
//! A [`Lab`] is:
//!
//! * a **LAN**: a bridge `br0` inside its own namespace (`<id>-lan`), so
//!   nothing is ever created in the test's own namespace and the host's real
//!   interfaces are never touched. The LAN is `10.<random>.0.0/16` (a random
//!   second octet per lab); the bridge itself holds `10.<r>.0.254`, where
//!   [`Lab::start_consul`] runs the Consul simulator, reachable from every
//!   host as a Consul server on the network would be;
//! * **hosts**: one namespace each (`<id>-<label>`), `lo` up, and an `eth0`
//!   veth to the bridge with `10.<r>.0.<i>/16` (the first host `.1`, the
//!   next `.2`, ...; [`Lab::add_host`] picks any address of the LAN, e.g.
//!   `10.<r>.1.9` for a machine outside the fleet's `/24`);
//! * **containers** ([`Lab::add_container`]): attached to a host as Docker
//!   attaches one: a bridge `docker0` inside the host's namespace with
//!   `172.18.0.1/16`, a veth to the container's namespace, the container at
//!   `172.18.0.<n+1>/16` with its default route via `172.18.0.1`. A container
//!   reaches its host's addresses only (no forwarding or NAT is set up), which
//!   is all a router on the bridge address needs.
//!
//! Processes run in a namespace through [`Netns::place`] and the crate's
//! `_in` variants ([`crate::Backend::start_in`], [`crate::Strait::start_in`],
//! [`crate::curl_in`], [`crate::wrk_in`]), which prefix `ip netns exec
//! <name>`. The test process itself stays in its own namespace, so it
//! reaches a namespace's addresses (admin servers on `127.0.0.1` included)
//! only through such a process, e.g. `curl_in`.
//!
//! Names are `stnet-<pid>-<n>-<role>`: unique per test process and per lab,
//! so parallel tests and parallel runs never collide (each lab has its own
//! bridge, so even equal addresses in two labs would not meet). Dropping
//! the `Lab` kills every process left in its namespaces and deletes them
//! (their veths and bridges go with them), so a failing test cleans up too.
//! The first `Lab` of a test process also sweeps the leftovers of crashed
//! earlier runs: every `stnet-<pid>-...` namespace whose `<pid>` is no
//! longer alive.
//!
//! No sysctl is changed: every path is one L2 hop on a bridge inside a
//! namespace, with connected routes only (no forwarding, so `ip_forward` and
//! `rp_filter` do not matter), and a fresh namespace has empty firewall
//! tables.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{Place, Proc, Response, curl_in};

/// The prefix of every namespace a [`Lab`] creates.
pub const PREFIX: &str = "stnet-";

/// The address containers' bridge holds in their host's namespace.
pub const DOCKER_BRIDGE: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);

/// A network namespace of a [`Lab`] (a host, a container, or the LAN).
#[derive(Clone, Debug)]
pub struct Netns {
    name: String,
    addr: Ipv4Addr,
}

impl Netns {
    /// The name `ip netns` knows it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address on its network (the LAN, or the docker bridge for a
    /// container).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// [`Netns::addr`] as an [`IpAddr`].
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.addr)
    }

    /// Where to run processes in it.
    pub fn place(&self) -> Place {
        Place::Netns(self.name.clone())
    }

    /// A command running `program` in it.
    pub fn command(&self, program: &str) -> Command {
        self.place().command(program)
    }

    /// Runs `program args` in it to completion; its stdout. Panics with
    /// stderr on failure.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        output(self.command(program).args(args))
    }
}

/// A test LAN with hosts and containers; everything is deleted on drop.
pub struct Lab {
    id: String,
    octet: u8,
    lan: Netns,
    hosts: Vec<(String, Netns)>,
    containers: Vec<(String, Netns)>,
    /// Every namespace created, in creation order (deleted in reverse).
    created: Vec<String>,
    /// Veths made so far, for unique names on the LAN bridge.
    links: u32,
}

static SWEEP: Once = Once::new();
static LABS: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// A LAN with one host per label (`"a"`, `"b"`, ...), at `10.<r>.0.1`,
    /// `10.<r>.0.2`, ... in that order.
    pub fn new(hosts: &[&str]) -> Lab {
        SWEEP.call_once(sweep);
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let id = format!("{PREFIX}{}-{n}", std::process::id());
        let octet = fastrand::u8(16..=250);
        let mut lab = Lab {
            lan: Netns {
                name: format!("{id}-lan"),
                addr: Ipv4Addr::new(10, octet, 0, 254),
            },
            id,
            octet,
            hosts: Vec::new(),
            containers: Vec::new(),
            created: Vec::new(),
            links: 0,
        };
        let lan = lab.lan.clone();
        lab.add_namespace(&lan.name);
        // A fixed MAC: a bridge without one takes the lowest of its ports'
        // and changes it as ports join, and the hosts' ARP caches would then
        // point at a MAC that no longer answers (new connections to the
        // bridge's address lost for seconds).
        ip(&[
            "-n",
            &lan.name,
            "link",
            "add",
            "br0",
            "address",
            "02:00:00:00:00:fe",
            "type",
            "bridge",
        ]);
        ip(&["-n", &lan.name, "link", "set", "br0", "up"]);
        let cidr = format!("{}/16", lan.addr);
        ip(&["-n", &lan.name, "addr", "add", &cidr, "dev", "br0"]);
        for (i, label) in hosts.iter().enumerate() {
            let addr = lab.lan_ip(0, u8::try_from(i + 1).unwrap());
            lab.add_host(label, addr);
        }
        lab
    }

    /// This lab's unique prefix (`stnet-<pid>-<n>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `10.<r>.<third>.<fourth>`: an address of this lab's LAN.
    pub fn lan_ip(&self, third: u8, fourth: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, third, fourth)
    }

    /// The hosts [`Lab::new`] made: `10.<r>.0.0/24`.
    pub fn fleet(&self) -> String {
        format!("10.{}.0.0/24", self.octet)
    }

    /// The LAN's own namespace (the bridge, at `10.<r>.0.254`).
    pub fn lan(&self) -> &Netns {
        &self.lan
    }

    /// The host labelled `label`.
    pub fn host(&self, label: &str) -> &Netns {
        find(&self.hosts, label, "host")
    }

    /// The container labelled `label`.
    pub fn container(&self, label: &str) -> &Netns {
        find(&self.containers, label, "container")
    }

    /// Adds a host `label` on the LAN at `addr` (one of [`Lab::lan_ip`]).
    pub fn add_host(&mut self, label: &str, addr: Ipv4Addr) -> &Netns {
        let ns = Netns {
            name: format!("{}-{label}", self.id),
            addr,
        };
        self.add_namespace(&ns.name);
        self.links += 1;
        let port = format!("h{}", self.links);
        let lan = self.lan.name.clone();
        ip(&[
            "-n", &lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns.name,
        ]);
        ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"]);
        let cidr = format!("{addr}/16");
        ip(&["-n", &ns.name, "addr", "add", &cidr, "dev", "eth0"]);
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
        self.hosts.push((label.to_owned(), ns));
        &self.hosts.last().unwrap().1
    }

    /// Adds a container `label` to host `host`, as Docker would (see the
    /// module docs): `docker0` with [`DOCKER_BRIDGE`] in the host's
    /// namespace (made by the host's first container), the container at
    /// the next `172.18.0.x`, default route via the bridge. Add containers
    /// before starting a process that binds the bridge address.
    pub fn add_container(&mut self, host: &str, label: &str) -> &Netns {
        let host_ns = self.host(host).name.clone();
        let siblings = self
            .containers
            .iter()
            .filter(|(_, c)| c.name.starts_with(&format!("{host_ns}-")))
            .count();
        if siblings == 0 {
            ip(&[
                "-n",
                &host_ns,
                "link",
                "add",
                "docker0",
                "address",
                "02:00:00:00:01:fe",
                "type",
                "bridge",
            ]);
            let cidr = format!("{DOCKER_BRIDGE}/16");
            ip(&["-n", &host_ns, "addr", "add", &cidr, "dev", "docker0"]);
            ip(&["-n", &host_ns, "link", "set", "docker0", "up"]);
        }
        let addr = Ipv4Addr::new(172, 18, 0, u8::try_from(siblings + 2).unwrap());
        let ns = Netns {
            name: format!("{host_ns}-{label}"),
            addr,
        };
        self.add_namespace(&ns.name);
        let veth = format!("veth{siblings}");
        ip(&[
            "-n", &host_ns, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
            &ns.name,
        ]);
        ip(&[
            "-n", &host_ns, "link", "set", &veth, "master", "docker0", "up",
        ]);
        let cidr = format!("{addr}/16");
        ip(&["-n", &ns.name, "addr", "add", &cidr, "dev", "eth0"]);
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
        let gw = DOCKER_BRIDGE.to_string();
        ip(&["-n", &ns.name, "route", "add", "default", "via", &gw]);
        self.containers.push((label.to_owned(), ns));
        &self.containers.last().unwrap().1
    }

    /// Every namespace this lab created (to check they are gone after drop).
    pub fn namespaces(&self) -> Vec<String> {
        self.created.clone()
    }

    /// Starts the Consul simulator (the `consul-sim` binary, see
    /// [`consul_sim_bin`]) in the LAN's namespace on `10.<r>.0.254:8500`,
    /// datacenter `dc1`.
    pub fn start_consul(&self) -> LabConsul {
        let bin = consul_sim_bin();
        let mut proc = Proc::spawn(
            self.lan
                .place()
                .command(&bin)
                .args(["--host", &self.lan.addr.to_string()])
                .args(["--port", "8500", "--datacenter", "dc1"]),
        );
        let addr = proc.wait_line(Duration::from_secs(20), |l| {
            l.strip_prefix("consul-sim: listening on ")
                .and_then(|a| a.trim().parse().ok())
        });
        LabConsul {
            proc,
            addr,
            place: self.lan.place(),
        }
    }

    /// Creates namespace `name` with `lo` up, remembered for deletion
    /// before anything else can fail.
    fn add_namespace(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.created.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            destroy(name);
        }
    }
}

/// The Consul simulator running in a [`Lab`]'s LAN namespace.
pub struct LabConsul {
    /// The process.
    pub proc: Proc,
    /// Where it listens (`10.<r>.0.254:8500`), reachable from every host.
    pub addr: SocketAddr,
    place: Place,
}

impl LabConsul {
    /// A request to the simulator (`curl` in the LAN namespace): `method`
    /// `path` with `body` (none when empty).
    pub fn request(&self, method: &str, path: &str, body: &str) -> Response {
        let url = format!("http://{}{path}", self.addr);
        let mut args = vec!["-X", method, &url];
        if !body.is_empty() {
            args.extend(["--data-binary", body]);
        }
        curl_in(&self.place, &args, &[])
    }

    /// `PUT path` with `body`, which must answer 200.
    pub fn put(&self, path: &str, body: &str) {
        let r = self.request("PUT", path, body);
        assert_eq!(r.status, 200, "PUT {path}: {r:?}");
    }

    /// Registers the instance `id` of `service` at `addr` with a passing
    /// TTL check.
    pub fn register(&self, service: &str, id: &str, addr: SocketAddr) {
        self.put(
            "/v1/agent/service/register",
            &format!(
                r#"{{"Name":"{service}","ID":"{id}","Address":"{}","Port":{},
                    "Check":{{"CheckID":"check-{id}","TTL":"600s","Status":"passing"}}}}"#,
                addr.ip(),
                addr.port()
            ),
        );
    }

    /// Deregisters instance `id`.
    pub fn deregister(&self, id: &str) {
        self.put(&format!("/v1/agent/service/deregister/{id}"), "");
    }
}

/// The `consul-sim` binary next to the running test's directory
/// (`target/<profile>/consul-sim`), built by `cargo test --workspace` or
/// `cargo build -p strait-test-kit --bin consul-sim`.
pub fn consul_sim_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("consul-sim"))
        .unwrap();
    assert!(
        bin.is_file(),
        "{} is missing: run the suite with `cargo test --workspace` (scripts/test), \
         or `cargo build -p strait-test-kit --bin consul-sim` first",
        bin.display()
    );
    bin
}

/// Whether a namespace called `name` exists.
pub fn exists(name: &str) -> bool {
    list().iter().any(|n| n == name)
}

/// Whether process `pid` is alive (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// The names `ip netns list` shows.
fn list() -> Vec<String> {
    output(Command::new("ip").args(["netns", "list"]))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Deletes the namespaces of crashed earlier runs: `stnet-<pid>-...` whose
/// `<pid>` is not alive. A live run's namespaces are never touched.
fn sweep() {
    for name in list() {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            destroy(&name);
        }
    }
}

/// Kills every process in namespace `name`, then deletes it (its links
/// go with it). Best effort: drop must not panic.
fn destroy(name: &str) {
    for _ in 0..50 {
        let pids = Command::new("ip")
            .args(["netns", "pids", name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        if pids.is_empty() {
            break;
        }
        let _ = Command::new("kill").arg("-KILL").args(&pids).output();
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = Command::new("ip").args(["netns", "delete", name]).output();
}

fn find<'a>(list: &'a [(String, Netns)], label: &str, what: &str) -> &'a Netns {
    list.iter()
        .find(|(l, _)| l == label)
        .map(|(_, ns)| ns)
        .unwrap_or_else(|| panic!("no {what} labelled {label:?}"))
}

/// Runs `ip args`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    output(Command::new("ip").args(args));
}

fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
