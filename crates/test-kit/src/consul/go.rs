//! The bits of Go's standard library whose exact behaviour Consul's HTTP
//! layer inherits: `time.ParseDuration`, `strconv.ParseBool` and
//! `url.ParseQuery`.

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers, each
/// with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), e.g. `300ms`, `-1.5h`, `1m30s`; a bare `0` is allowed. Returns
/// nanoseconds, or `None` where Go returns an error (including overflow).
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => a.split_at(a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len())),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        // Go keeps at most the precision that fits; 30 digits is plenty.
        let frac = &frac[..frac.len().min(30)];
        let frac_value: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let frac_ns = frac_value * scale / 10u128.pow(frac.len() as u32);
        total = total.checked_add(whole.checked_mul(scale)?.checked_add(frac_ns)?)?;
        if total > i64::MAX as u128 {
            return None;
        }
        rest = after;
    }
    let total = total as i64;
    Some(if negative { -total } else { total })
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A request's query string as `url.ParseQuery` reads it: `(key, value)`
/// pairs in order, `+` and `%XX` decoded; a bare `key` has value `""`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `raw` (the part after `?`, if any).
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split(['&', ';'])
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (unescape(k, true), unescape(v, true))
            })
            .collect();
        Query(pairs)
    }

    /// Whether `key` is present at all (`?stale` counts).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// The first value of `key` (Go's `Query().Get`).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `key` (how Consul reads most options).
    pub(crate) fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of `key`, in order.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decodes `s` (and `+` as a space when `plus` is set). Invalid
/// escapes are kept literally.
pub(crate) fn unescape(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_does() {
        let ms = 1_000_000;
        let s = 1_000 * ms;
        for (text, ns) in [
            ("0", 0),
            ("10s", 10 * s),
            ("1m30s", 90 * s),
            ("250ms", 250 * ms),
            ("1.5h", 5400 * s),
            ("300us", 300_000),
            ("300µs", 300_000),
            ("7ns", 7),
            (".5s", 500 * ms),
            ("1.s", s),
            ("-2s", -2 * s),
            ("+2s", 2 * s),
            ("1h1m1s1ms", 3661 * s + ms),
        ] {
            assert_eq!(parse_duration(text), Some(ns), "{text}");
        }
        for bad in [
            "",
            "10",
            "s",
            ".s",
            "1x",
            "1.2.3s",
            "-",
            "10 s",
            "1e3s",
            "9999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad} must be refused");
        }
    }

    #[test]
    fn queries_decode_like_url_parse_query() {
        let q = Query::parse(Some("tag=a&tag=b%20c&passing&note=x+y&empty="));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), ["a", "b c"]);
        assert!(q.has("passing"));
        assert_eq!(q.get("passing"), Some(""));
        assert_eq!(q.get("note"), Some("x y"));
        assert_eq!(q.non_empty("empty"), None);
        assert_eq!(unescape("100%", false), "100%");
        assert_eq!(unescape("%zz%41", false), "%zzA");
    }
}
