//! Feeds arbitrary bytes to the config loader (`strait::config::parse`,
//! what `strait check` and every load and reload run), then to everything
//! the daemon does with a config that parsed: serialize it for
//! `/config.json` and lower each router and Consul namer to the types the
//! router and the namers run on. None of it may panic; errors are fine.
//!
//! Lowering a router whose config names an `httpAccessLog` would open (and
//! create) that file, so those are skipped: the fuzzer must not write files
//! wherever its input says.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::config::{self, NamerConfig, lower};
use strait_router::stats::Registry;

fuzz_target!(|data: &[u8]| {
    // The loader reads files with `read_to_string`, so only UTF-8 text
    // reaches `parse`; lossy conversion keeps the rest of the input useful.
    let text = String::from_utf8_lossy(data);
    match config::parse(&text, "fuzz.yaml") {
        Ok(cfg) => {
            assert!(!cfg.routers.is_empty(), "a valid config has a router");
            serde_json::to_value(&cfg).expect("/config.json serializes every valid config");
            let registry = Registry::default();
            for rc in &cfg.routers {
                let _ = lower::policies(rc);
                if rc.http_access_log.is_none() {
                    // Checked header names lower without error.
                    lower::router_params(rc, &registry).expect("a checked router lowers");
                }
            }
            for n in &cfg.namers {
                if let NamerConfig::Consul(c) = n {
                    let _ = lower::consul_config(c);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error result names an error");
            for e in &errors {
                assert!(e.line >= 1 && e.col >= 1, "positions are 1-based: {e}");
                let _ = e.to_string();
            }
        }
    }
});
