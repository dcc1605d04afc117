//! What a per-request dtab override (`l5d-dtab`, `l5d-ctx-dtab`) may reach.
//!
//! Overrides are off unless a server opts in (`dtabOverride: true`, a Strait
//! key). On a server that accepts them, a request bound under an override is
//! checked where its address is known for sure, at each attempt, against an
//! [`OverrideGuard`]:
//!
//! * never Strait's own admin or router listener addresses (an override
//!   pointing at `/$/inet/127.0.0.1/9990` must not reach `/admin/shutdown`);
//! * an address of a `/$/inet` (or `/$/fixedinet`) name only when the
//!   router's `inetAllow` list covers it (default: loopback), or when the
//!   router's own dtab names that `ip:port` literally.
//!
//! Everything is precomputed when the config is built: a check is a few set
//! lookups and a scan of a short rule list, with no allocation unless it
//! refuses.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use strait_dtab::{Dtab, NameTree, Path};

/// One `inetAllow` pattern: an address or a CIDR block, optionally with a
/// port: `10.0.0.0/8`, `10.1.2.3`, `10.1.2.3:8080`, `::1`,
/// `[fd00::]/8:80`... written `<ip>[/<bits>][:<port>]`, IPv6 in brackets
/// when a port follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InetRule {
    net: IpAddr,
    bits: u8,
    port: Option<u16>,
}

impl InetRule {
    /// The default `inetAllow`: loopback only (`127.0.0.0/8`, `::1`).
    pub fn loopback() -> Vec<InetRule> {
        vec![
            InetRule {
                net: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                bits: 8,
                port: None,
            },
            InetRule {
                net: IpAddr::V6(Ipv6Addr::LOCALHOST),
                bits: 128,
                port: None,
            },
        ]
    }

    /// Parses one pattern; the error says what is wrong.
    pub fn parse(s: &str) -> Result<InetRule, String> {
        let bad = |why: &str| {
            format!(
                "'{s}' is not an address pattern ({why}); write an IP or CIDR block, \
                 optionally with a port: 10.0.0.0/8, 10.1.2.3:8080, [::1]:80"
            )
        };
        let s = s.trim();
        // Split off the port: `[v6...]:port`, `v4...:port`; a bare IPv6
        // has more than one colon and no brackets, so no port.
        let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            // `[fd00::]/8:80`: the prefix may follow the bracket.
            let (bits, port) = match after.split_once(':') {
                Some((b, p)) => (b, Some(p)),
                None => (after, None),
            };
            (format!("{inside}{bits}"), port)
        } else if s.matches(':').count() == 1 {
            let (a, p) = s.split_once(':').ok_or_else(|| bad("no port"))?;
            (a.to_owned(), Some(p))
        } else {
            (s.to_owned(), None)
        };
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
        };
        let (ip, bits) = match addr.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (addr.as_str(), None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad("bad IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad("bad prefix length"))?,
        };
        Ok(InetRule {
            net: mask(ip, bits),
            bits,
            port,
        })
    }

    /// Whether `addr` matches.
    pub fn matches(&self, addr: SocketAddr) -> bool {
        if self.port.is_some_and(|p| p != addr.port()) {
            return false;
        }
        let ip = addr.ip().to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.bits) == self.net
    }
}

impl fmt::Display for InetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.net.is_ipv4() { 32 } else { 128 };
        let net = match (self.net, self.port) {
            (IpAddr::V6(ip), Some(_)) => format!("[{ip}]"),
            (ip, _) => ip.to_string(),
        };
        write!(f, "{net}")?;
        if self.bits != full {
            write!(f, "/{}", self.bits)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

/// What a request bound under a dtab override may reach (see the module
/// docs). Built once per router and server set, shared by its servers.
#[derive(Debug, Default)]
pub struct OverrideGuard {
    /// Strait's own addresses (admin, every router listener), exactly.
    own: HashSet<SocketAddr>,
    /// Ports Strait listens on at a wildcard address (`0.0.0.0`, `::`):
    /// refused on any loopback or wildcard address.
    own_ports: HashSet<u16>,
    /// The router's `inetAllow`.
    allow: Vec<InetRule>,
    /// `ip:port` named literally as `/$/inet/<ip>/<port>` by the router's
    /// own dtab: the operator's own targets stay reachable.
    dtab_targets: HashSet<SocketAddr>,
}

/// `/$/inet` and `/$/fixedinet`: names whose address the override's text
/// chooses.
fn is_inet(id: &Path) -> bool {
    let e = id.elems();
    e.len() >= 2 && &e[0][..] == b"$" && matches!(&e[1][..], b"inet" | b"fixedinet")
}

impl OverrideGuard {
    /// A guard refusing `own` (Strait's admin and listener addresses, as
    /// bound), allowing `/$/inet` addresses that `allow` covers or that
    /// `dtab` (the router's own) names literally.
    pub fn new(own: &[SocketAddr], allow: Vec<InetRule>, dtab: &Dtab) -> OverrideGuard {
        let mut g = OverrideGuard {
            allow,
            ..OverrideGuard::default()
        };
        for a in own {
            let a = SocketAddr::new(a.ip().to_canonical(), a.port());
            if a.ip().is_unspecified() {
                g.own_ports.insert(a.port());
            } else {
                g.own.insert(a);
            }
        }
        for d in dtab.dentries() {
            collect_inet(&d.dst, &mut g.dtab_targets);
        }
        g
    }

    /// Whether a request bound under an override may be sent to `addr`, an
    /// endpoint of the concrete name `id`; the refusal says why.
    pub fn check(&self, id: &Path, addr: SocketAddr) -> Result<(), String> {
        let canon = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let ip = canon.ip();
        let local = ip.is_loopback() || ip.is_unspecified();
        let own = self.own.contains(&canon)
            || (local && self.own_ports.contains(&canon.port()))
            // A connect to 0.0.0.0:p reaches a listener on loopback port p.
            || (ip.is_unspecified()
                && self.own.iter().any(|o| o.port() == canon.port() && o.ip().is_loopback()));
        if own {
            return Err(format!(
                "a dtab override may not route to {addr}: it is Strait's own admin or router \
                 address"
            ));
        }
        if is_inet(id)
            && !self.dtab_targets.contains(&canon)
            && !self.allow.iter().any(|r| r.matches(canon))
        {
            return Err(format!(
                "a dtab override may not route to {addr} ({id}): the address is not in the \
                 router's inetAllow list"
            ));
        }
        Ok(())
    }
}

/// Every `/$/inet/<ip>/<port>` leaf of `tree` (IP literals only).
fn collect_inet(tree: &NameTree<Path>, out: &mut HashSet<SocketAddr>) {
    match tree {
        NameTree::Leaf(p) => {
            let e = p.elems();
            if e.len() >= 4 && is_inet(p) {
                let host = std::str::from_utf8(&e[2]).ok();
                let ip = host.and_then(|h| {
                    h.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .ok()
                });
                let port = std::str::from_utf8(&e[3])
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok());
                if let (Some(ip), Some(port)) = (ip, port) {
                    out.insert(SocketAddr::new(ip.to_canonical(), port));
                }
            }
        }
        NameTree::Union(ws) => ws.iter().for_each(|w| collect_inet(&w.tree, out)),
        NameTree::Alt(ts) => ts.iter().for_each(|t| collect_inet(t, out)),
        NameTree::Neg | NameTree::Fail | NameTree::Empty => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_match() {
        let r = InetRule::parse("10.0.0.0/8").unwrap();
        assert!(r.matches(sa("10.9.8.7:80")));
        assert!(!r.matches(sa("11.0.0.1:80")));
        assert_eq!(r.to_string(), "10.0.0.0/8");
        let r = InetRule::parse("10.1.2.3:8080").unwrap();
        assert!(r.matches(sa("10.1.2.3:8080")));
        assert!(!r.matches(sa("10.1.2.3:8081")));
        let r = InetRule::parse("[fd00::]/8:80").unwrap();
        assert!(r.matches(sa("[fd12::1]:80")));
        assert!(!r.matches(sa("[fd12::1]:81")));
        assert_eq!(r.to_string(), "[fd00::]/8:80");
        let r = InetRule::parse("::1").unwrap();
        assert!(r.matches(sa("[::1]:1")));
        assert!(!r.matches(sa("127.0.0.1:1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.1:99999", "[::1", "1.2.3.4/8/8"] {
            assert!(InetRule::parse(bad).is_err(), "{bad}");
        }
        let lo = InetRule::loopback();
        assert!(lo.iter().any(|r| r.matches(sa("127.0.0.2:5"))));
        assert!(lo.iter().any(|r| r.matches(sa("[::ffff:127.0.0.1]:5"))));
    }

    #[test]
    fn own_addresses_are_refused_and_inet_needs_the_allow_list() {
        let dtab = Dtab::read("/svc/web=>/$/inet/10.0.0.5/80").unwrap();
        let g = OverrideGuard::new(
            &[sa("127.0.0.1:9990"), sa("0.0.0.0:4140")],
            InetRule::loopback(),
            &dtab,
        );
        let inet = Path::read("/$/inet/127.0.0.1/9990").unwrap();
        let fs = Path::read("/#/io.l5d.fs/web").unwrap();
        for a in [
            "127.0.0.1:9990",
            "0.0.0.0:9990",
            "127.0.0.1:4140",
            "127.0.0.9:4140",
        ] {
            assert!(g.check(&inet, sa(a)).is_err(), "{a}");
            assert!(g.check(&fs, sa(a)).is_err(), "{a} via another namer");
        }
        assert!(g.check(&inet, sa("127.0.0.1:8080")).is_ok());
        let far = Path::read("/$/inet/192.168.1.1/80").unwrap();
        let e = g.check(&far, sa("192.168.1.1:80")).unwrap_err();
        assert!(e.contains("inetAllow"), "{e}");
        assert!(
            g.check(&fs, sa("192.168.1.1:80")).is_ok(),
            "not an inet name"
        );
        let web = Path::read("/$/inet/10.0.0.5/80").unwrap();
        assert!(
            g.check(&web, sa("10.0.0.5:80")).is_ok(),
            "named by the dtab"
        );
    }
}
