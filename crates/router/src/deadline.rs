//! `l5d-ctx-deadline`: `"<timestamp ns> <deadline ns>"` (nanoseconds since
//! the Unix epoch), possibly several values; the strictest (earliest)
//! deadline wins. Strait honours it (the request's total timeout is cut to
//! what is left) and re-emits the strictest deadline downstream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The header.
pub const L5D_CTX_DEADLINE: HeaderName = HeaderName::from_static("l5d-ctx-deadline");

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
}

/// The earliest deadline in the request's `l5d-ctx-deadline` values (ns
/// since the epoch), ignoring values that do not parse.
pub fn read(h: &HeaderMap) -> Option<u128> {
    h.get_all(&L5D_CTX_DEADLINE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| v.split_whitespace().nth(1)?.parse::<u128>().ok())
        .min()
}

/// How long until `deadline` (zero when it has passed).
pub fn remaining(deadline: u128) -> Duration {
    let left = deadline.saturating_sub(now_ns());
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

/// The total timeout of a request: `totalTimeoutMs` cut to what is left
/// of its `l5d-ctx-deadline`, either alone when only one is set.
pub fn total_timeout(policy: Option<Duration>, deadline: Option<u128>) -> Option<Duration> {
    // The clock is read only when the request carries a deadline.
    match deadline {
        None => policy,
        Some(_) => total_timeout_at(policy, deadline, now_ns()),
    }
}

fn total_timeout_at(
    policy: Option<Duration>,
    deadline: Option<u128>,
    now: u128,
) -> Option<Duration> {
    let left = deadline
        .map(|d| Duration::from_nanos(u64::try_from(d.saturating_sub(now)).unwrap_or(u64::MAX)));
    match (policy, left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Replaces the header with the strictest of `deadline` and the end of
/// `timeout` from now; `present`: the request may carry one already.
pub fn write(h: &mut HeaderMap, deadline: Option<u128>, timeout: Option<Duration>, present: bool) {
    if present {
        h.remove(&L5D_CTX_DEADLINE);
    }
    if deadline.is_none() && timeout.is_none() {
        return;
    }
    let now = now_ns();
    let from_timeout = timeout.map(|t| now + t.as_nanos());
    let strictest = match (deadline, from_timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(v) = strictest.and_then(|d| HeaderValue::from_str(&format!("{now} {d}")).ok()) {
        h.insert(L5D_CTX_DEADLINE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_timeout_is_the_policy_cut_to_the_deadline() {
        let s = Duration::from_secs;
        let now = 1_000 * 1_000_000_000u128;
        let in_2s = Some(now + s(2).as_nanos());
        assert_eq!(total_timeout_at(None, None, now), None);
        assert_eq!(total_timeout_at(Some(s(5)), None, now), Some(s(5)));
        assert_eq!(total_timeout_at(None, in_2s, now), Some(s(2)));
        assert_eq!(total_timeout_at(Some(s(5)), in_2s, now), Some(s(2)));
        assert_eq!(total_timeout_at(Some(s(1)), in_2s, now), Some(s(1)));
        // A deadline already past leaves no time at all.
        assert_eq!(
            total_timeout_at(Some(s(5)), Some(now - 1), now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn strictest_deadline_wins() {
        let mut h = HeaderMap::new();
        h.append(L5D_CTX_DEADLINE, HeaderValue::from_static("1 500, 2 300"));
        h.append(L5D_CTX_DEADLINE, HeaderValue::from_static("3 400"));
        h.append(L5D_CTX_DEADLINE, HeaderValue::from_static("garbage"));
        assert_eq!(read(&h), Some(300));
    }

    #[test]
    fn written_deadline_is_the_earlier_of_the_incoming_one_and_the_timeout() {
        let mut h = HeaderMap::new();
        let far = now_ns() + 60_000_000_000;
        h.insert(L5D_CTX_DEADLINE, HeaderValue::from_static("1 2"));
        write(&mut h, Some(far), Some(Duration::from_secs(1)), true);
        assert_eq!(h.get_all(&L5D_CTX_DEADLINE).iter().count(), 1, "replaced");
        let d = read(&h).unwrap_or(0);
        assert!(
            d < far && remaining(d) <= Duration::from_secs(1),
            "the timeout is stricter"
        );
        assert_eq!(
            remaining(1),
            Duration::ZERO,
            "a past deadline leaves nothing"
        );
        // Neither a deadline nor a timeout: the incoming one goes, none
        // is written.
        write(&mut h, None, None, true);
        assert_eq!(read(&h), None);
    }
}
