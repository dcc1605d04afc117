//! The file checks of a client `tls` block (a router's `client.tls` and
//! `client.configs[].tls`, the Consul namer's and interpreter's `tls`),
//! made by `strait check`, `strait run` and every reload, as for a
//! server's `tls`: each file exists and parses, `clientAuth.keyPath` is
//! the key of `clientAuth.certPath`'s certificate, and a certificate (the
//! client's or a trusted CA) expiring within
//! [`super::tls::EXPIRY_WARNING`] is a warning.

use strait_router::tls_client::TlsClientTemplate;

use super::client_tls::ClientTlsConfig;
use super::read::Ctx;
use super::tree::{Node, Pos, Value};

/// Loads the files of `tls` (read from `node`, at `path`): an error at
/// the key whose file is wrong, warnings for certificates near expiry.
pub(super) fn check(cx: &mut Ctx<'_>, node: &Node, path: &str, tls: &ClientTlsConfig) {
    if !tls.enabled {
        return;
    }
    match TlsClientTemplate::load(&tls.spec()) {
        Ok(loaded) => {
            for c in loaded.certificates() {
                super::tls::warn_expiry(
                    cx,
                    pos_of(node, &c.key),
                    &format!("{path}.{}", c.key),
                    &c.info,
                );
            }
        }
        Err(e) => {
            // The loader's errors begin with the block's key they are
            // about: `clientAuth.keyPath: …`, `trustCerts[1]: …`.
            let (key, message) = e.split_once(": ").unwrap_or(("", e.as_str()));
            let at = if key.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{key}")
            };
            cx.error(pos_of(node, key), &at, message);
        }
    }
}

/// Where the value at `key` (`clientAuth.keyPath`, `trustCerts[1]`) is
/// written under `node`; the nearest enclosing value's position when not.
fn pos_of(node: &Node, key: &str) -> Pos {
    let mut at = node;
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Value::Map(entries) = &at.value else {
            break;
        };
        let Some((_, child)) = entries.iter().find(|(k, _)| k.name == name) else {
            break;
        };
        at = child;
        if let (Some(i), Value::Seq(items)) = (index, &at.value) {
            match items.get(i) {
                Some(item) => at = item,
                None => break,
            }
        }
    }
    at.pos
}
