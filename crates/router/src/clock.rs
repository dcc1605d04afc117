//! Milliseconds since the process started: the last-use stamps that idle
//! expiry compares. A request reads the clock once when its server has
//! it; the binding, the service and the client it uses are stamped from
//! that one reading.

use std::sync::LazyLock;
use std::time::Instant;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// `t` in milliseconds after the epoch (0 before it).
pub(crate) fn ms(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(*EPOCH).as_millis()).unwrap_or(u64::MAX)
}

/// Now, in milliseconds after the epoch.
pub(crate) fn now_ms() -> u64 {
    ms(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_clock() {
        let a = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = now_ms();
        assert!(b >= a + 20, "{a} then {b}");
        assert_eq!(ms(*EPOCH), 0);
    }
}
