//! This host's interface addresses (`getifaddrs`), for the
//! `io.l5d.localhost` transformer and for defaults that depend on the
//! local networks.
//!
//! Linkerd 1 enumerates the addresses of every interface that is up.
//! `getifaddrs` lists the addresses assigned to interfaces; an address on
//! an interface that is down is listed too (`if-addrs` does not report
//! the flag), which only matters for a filter that would then keep it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How often [`watch_local_ips`] re-reads the interfaces.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Every address assigned to one of this host's interfaces, with its
/// prefix length (e.g. `(10.0.0.5, 24)`), loopback included; empty if the
/// interfaces cannot be read.
pub fn interface_addrs() -> Vec<(IpAddr, u8)> {
    match if_addrs::get_if_addrs() {
        Ok(ifs) => ifs
            .into_iter()
            .map(|i| match i.addr {
                if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), a.prefixlen),
                if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), a.prefixlen),
            })
            .collect(),
        Err(e) => {
            tracing::warn!("cannot read the network interfaces: {e}");
            Vec::new()
        }
    }
}

/// This host's interface IPs, sorted and without duplicates.
pub fn local_ips() -> Arc<[IpAddr]> {
    let mut ips: Vec<IpAddr> = interface_addrs().into_iter().map(|(ip, _)| ip).collect();
    ips.sort();
    ips.dedup();
    ips.into()
}

/// This host's interface IPs ([`local_ips`]), re-read every `period` by a
/// task that ends once every receiver is gone. A change is published only
/// when the set differs. Outside a Tokio runtime the set is read once and
/// never refreshed.
pub fn watch_local_ips(period: Duration) -> watch::Receiver<Arc<[IpAddr]>> {
    let (tx, rx) = watch::channel(local_ips());
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(period) => {}
                }
                let now = local_ips();
                tx.send_if_modified(|cur| {
                    let changed = *cur != now;
                    if changed {
                        *cur = now;
                    }
                    changed
                });
            }
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_a_local_address() {
        let ips = local_ips();
        assert!(
            ips.iter().any(|ip| ip.is_loopback()),
            "interfaces: {:?}",
            interface_addrs()
        );
        assert!(interface_addrs().iter().all(|(_, len)| *len <= 128));
    }
}
