//! Which clients a server accepts connections from (`clientNetworks`, a
//! Strait key on `routers[].servers[]`).
//!
//! The check runs in the accept loop, before a byte is read: the list is
//! precomputed as `(network, mask)` integer pairs per address family, and
//! a check is a canonicalisation (an IPv4-mapped IPv6 peer on a dual-stack
//! listener is its IPv4 address) plus an AND and a compare per network.
//!
//! Without the key a server accepts loopback, this host's own addresses,
//! and the private subnets directly attached to its interfaces (RFC 1918,
//! RFC 4193 ULA): where containers on a Docker bridge come from. See
//! [`host_default`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One network: an address with the bits past its prefix cleared, and the
/// prefix length. Written `10.0.0.0/8`, `fd00::/8`, or a bare address for
/// that one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    net: IpAddr,
    bits: u8,
}

impl Network {
    /// `ip/bits`, host bits cleared; `None` when `bits` is longer than the
    /// address.
    pub fn new(ip: IpAddr, bits: u8) -> Option<Network> {
        let ip = ip.to_canonical();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (bits <= max).then(|| Network {
            net: masked(ip, bits),
            bits,
        })
    }

    /// Parses `10.0.0.0/8`, `172.17.0.1/16` (host bits are cleared),
    /// `::1` or `fd00::/8`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Network, String> {
        let bad = |why: &str| {
            format!(
                "'{s}' is not a network ({why}); write an IP address or a CIDR block: \
                 172.17.0.0/16, 10.1.2.3, ::1, fd00::/8"
            )
        };
        let t = s.trim();
        let (ip, bits) = match t.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (t, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad("bad IP address"))?;
        let max = if ip.to_canonical().is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad("bad prefix length"))?,
        };
        Network::new(ip, bits).ok_or_else(|| bad("bad prefix length"))
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && masked(ip, self.bits) == self.net
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.net.is_ipv4() { 32 } else { 128 };
        if self.bits == full {
            write!(f, "{}", self.net)
        } else {
            write!(f, "{}/{}", self.net, self.bits)
        }
    }
}

fn mask4(bits: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0)
}

fn mask6(bits: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0)
}

fn masked(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask4(bits))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask6(bits))),
    }
}

/// The source networks a server accepts connections from, ready for the
/// accept loop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientNetworks {
    /// `(network, mask)` for IPv4 peers.
    v4: Vec<(u32, u32)>,
    /// `(network, mask)` for IPv6 peers.
    v6: Vec<(u128, u128)>,
    /// As configured (or found), for logs and errors.
    listed: Vec<Network>,
}

impl ClientNetworks {
    /// Accepts peers in any of `networks` (duplicates are dropped).
    pub fn new(networks: &[Network]) -> ClientNetworks {
        let mut c = ClientNetworks::default();
        for n in networks {
            if c.listed.contains(n) {
                continue;
            }
            c.listed.push(*n);
            match n.net {
                IpAddr::V4(v4) => c.v4.push((u32::from(v4), mask4(n.bits))),
                IpAddr::V6(v6) => c.v6.push((u128::from(v6), mask6(n.bits))),
            }
        }
        c
    }

    /// Accepts every peer (`0.0.0.0/0`, `::/0`).
    pub fn any() -> ClientNetworks {
        ClientNetworks::new(&[
            Network {
                net: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                bits: 0,
            },
            Network {
                net: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                bits: 0,
            },
        ])
    }

    /// Whether a connection from `peer` is served.
    #[inline]
    pub fn allows(&self, peer: IpAddr) -> bool {
        match peer.to_canonical() {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                self.v4.iter().any(|(net, mask)| a & mask == *net)
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                self.v6.iter().any(|(net, mask)| a & mask == *net)
            }
        }
    }

    /// The networks, as listed.
    pub fn networks(&self) -> &[Network] {
        &self.listed
    }
}

impl fmt::Display for ClientNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.listed.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// The private blocks whose attached subnets the default accepts:
/// RFC 1918 and RFC 4193 (unique local IPv6).
const PRIVATE: [(IpAddr, u8); 4] = [
    (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
    (IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
    (IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
];

/// The default `clientNetworks` for a host whose interfaces carry
/// `interfaces` (address, prefix length): loopback (`127.0.0.0/8`,
/// `::1`), each interface address itself (the host talking to itself
/// through a non-loopback address), and each interface's subnet when the
/// address is private; a subnet wider than its private block is cut to the
/// block. Link-local subnets are not included: every IPv6 interface has
/// one, the public one too, so they would open the server to the whole
/// segment of a public interface.
pub fn default_networks(interfaces: &[(IpAddr, u8)]) -> Vec<Network> {
    let mut out = vec![
        Network {
            net: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            bits: 8,
        },
        Network {
            net: IpAddr::V6(Ipv6Addr::LOCALHOST),
            bits: 128,
        },
    ];
    // A network already covered by one listed is left out.
    let mut add = |n: Network| {
        if !out.iter().any(|o| o.bits <= n.bits && o.contains(n.net)) {
            out.push(n);
        }
    };
    for &(ip, bits) in interfaces {
        let ip = ip.to_canonical();
        let private = PRIVATE.iter().find_map(|&(net, len)| {
            Network::new(net, len)
                .filter(|n| n.contains(ip))
                .map(|_| len)
        });
        if let Some(n) = private.and_then(|block| Network::new(ip, bits.max(block))) {
            add(n);
        }
        let full = if ip.is_ipv4() { 32 } else { 128 };
        if let Some(n) = Network::new(ip, full) {
            add(n);
        }
    }
    out
}

/// The default `clientNetworks`, read from this host's interfaces now (at
/// start and on every reload).
pub fn host_default() -> ClientNetworks {
    ClientNetworks::new(&default_networks(
        &strait_naming::interfaces::interface_addrs(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let n = Network::parse("172.17.0.1/16").unwrap();
        assert_eq!(n.to_string(), "172.17.0.0/16", "host bits are cleared");
        assert!(n.contains(ip("172.17.255.3")));
        assert!(!n.contains(ip("172.18.0.1")));
        assert!(
            n.contains(ip("::ffff:172.17.0.9")),
            "an IPv4-mapped peer is its IPv4 address"
        );
        assert_eq!(Network::parse("::1").unwrap().to_string(), "::1");
        assert_eq!(Network::parse("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(
            Network::parse("10.0.0.0/33").unwrap_err(),
            "'10.0.0.0/33' is not a network (bad prefix length); write an IP address or a \
             CIDR block: 172.17.0.0/16, 10.1.2.3, ::1, fd00::/8"
        );
        assert!(Network::parse("10.0.0.0:80").is_err());
        assert!(Network::parse("host").is_err());
    }

    #[test]
    fn the_check_is_by_family_and_prefix() {
        let c = ClientNetworks::new(&[
            Network::parse("127.0.0.3").unwrap(),
            Network::parse("10.0.0.0/8").unwrap(),
            Network::parse("fd00::/8").unwrap(),
        ]);
        assert!(c.allows(ip("127.0.0.3")));
        assert!(!c.allows(ip("127.0.0.1")));
        assert!(c.allows(ip("10.200.1.1")));
        assert!(c.allows(ip("::ffff:10.0.0.1")));
        assert!(c.allows(ip("fd12::1")));
        assert!(!c.allows(ip("fe80::1")));
        assert!(!c.allows(ip("8.8.8.8")));
        assert!(ClientNetworks::any().allows(ip("8.8.8.8")));
        assert!(ClientNetworks::any().allows(ip("2001:db8::1")));
        assert!(!ClientNetworks::default().allows(ip("127.0.0.1")));
    }

    #[test]
    fn the_default_is_loopback_the_hosts_addresses_and_private_attached_subnets() {
        let ifaces = [
            (ip("127.0.0.1"), 8),
            (ip("::1"), 128),
            // A public interface: only its own address.
            (ip("203.0.113.7"), 24),
            (ip("fe80::1"), 64),
            // Docker's bridge and a user-defined network.
            (ip("172.17.0.1"), 16),
            (ip("192.168.99.1"), 24),
            // A private address with a mask wider than its block.
            (ip("10.1.2.3"), 4),
            (ip("fd00:1::1"), 64),
        ];
        let shown: Vec<String> = default_networks(&ifaces)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "127.0.0.0/8",
                "::1",
                "203.0.113.7",
                "fe80::1",
                "172.17.0.0/16",
                "192.168.99.0/24",
                "10.0.0.0/8",
                "fd00:1::/64",
            ]
        );
        let c = ClientNetworks::new(&default_networks(&ifaces));
        assert!(c.allows(ip("172.17.0.5")), "a container on docker0");
        assert!(
            !c.allows(ip("203.0.113.8")),
            "a neighbour on the public side"
        );
        assert!(!c.allows(ip("fe80::2")), "a link-local neighbour");
        assert!(!c.allows(ip("11.0.0.1")));
    }
}
