//! Helpers shared by the namers' unit tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strait_dtab::{Bound, Name, NameTree, State};

use crate::{Activity, Addr, AddrVar, LookupTree};

/// The bound leaf of a lookup answer; panics on anything else.
pub(crate) fn bound(state: &State<LookupTree>) -> &Bound<AddrVar> {
    match state {
        State::Ok(NameTree::Leaf(Name::Bound(b))) => b,
        other => panic!("expected a bound leaf, got {other:?}"),
    }
}

/// Whether a lookup answer is negative.
pub(crate) fn is_neg(state: &State<LookupTree>) -> bool {
    matches!(state, State::Ok(NameTree::Neg))
}

/// Whether a lookup answer is a bound leaf.
pub(crate) fn is_bound(state: &State<LookupTree>) -> bool {
    matches!(state, State::Ok(NameTree::Leaf(Name::Bound(_))))
}

/// Waits up to `limit` for the address set to satisfy `f`.
pub(crate) async fn wait_addr(
    var: &mut AddrVar,
    limit: Duration,
    what: &str,
    f: impl FnMut(&Addr) -> bool,
) -> Addr {
    let got = tokio::time::timeout(limit, var.wait_for(f))
        .await
        .map(|r| r.map(|a| a.clone()));
    match got {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => panic!("address set closed while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}; now {}", *var.borrow()),
    }
}

/// The addresses of a bound set; panics on anything else.
pub(crate) fn addrs(addr: &Addr) -> Vec<String> {
    match addr {
        Addr::Bound(eps) => eps.iter().map(|e| e.addr.to_string()).collect(),
        other => panic!("expected a bound set, got {other}"),
    }
}

/// Waits up to `limit` for the lookup to satisfy `f`; panics naming `what`.
pub(crate) async fn wait_state(
    act: &mut Activity,
    limit: Duration,
    what: &str,
    f: impl FnMut(&State<LookupTree>) -> bool,
) -> State<LookupTree> {
    let got = tokio::time::timeout(limit, act.wait_for(f))
        .await
        .map(|r| r.map(|s| s.clone()));
    match got {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("lookup closed while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}; now {:?}", *act.borrow()),
    }
}
