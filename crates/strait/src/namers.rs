//! The configured namers, built: `io.l5d.fs`, `io.l5d.consul`,
//! `io.l5d.dnssrv` and `io.l5d.rewrite` from their (lowered) config,
//! wrapped in their `transformers`, with the Consul namer's stats
//! registered; and the routers' stored-dtab interpreters. Building one
//! starts its I/O (file watches, Consul
//! long polls, DNS), so this is not part of the pure lowering in
//! `config::lower`.

use std::sync::Arc;

use strait_dtab::Path;
use strait_namer_consul::ConsulNamer;
use strait_naming::Namer;
use strait_naming::dnssrv::DnsSrvNamer;
use strait_naming::fs::FsNamer;
use strait_naming::inet::InetResolver;
use strait_naming::rewrite::RewriteNamer;
use strait_naming::transform::{Transformer, TransformingNamer};
use strait_router::stats::{Registry, Scope};

use strait_namer_consul::ConsulDtabInterpreter;
use strait_naming::fs_dtab::FsDtabInterpreter;
use strait_naming::stored::DtabInterpreter;

use crate::admin::NamerEntry;
use crate::config::{
    InterpreterConfig, InterpreterKind, NamerConfig, TransformerConfig, consul_kv_config, lower,
};

/// The namer `n` configures, with its stats registered in `registry`.
pub fn build_namer(n: &NamerConfig, registry: &Registry) -> Result<NamerEntry, String> {
    let prefix: Path = n.full_prefix();
    let (kind, namer): (&str, Arc<dyn Namer>) = match n {
        NamerConfig::Fs(fs) => (
            "io.l5d.fs",
            Arc::new(
                FsNamer::new(fs.root_dir.clone()).map_err(|e| format!("namer {prefix}: {e}"))?,
            ),
        ),
        NamerConfig::Consul(c) => {
            let namer = Arc::new(
                lower::consul_config(c)
                    .and_then(ConsulNamer::new)
                    .map_err(|e| format!("namer {prefix}: {e}"))?,
            );
            register_consul_stats(registry, &prefix, &namer);
            ("io.l5d.consul", namer)
        }
        NamerConfig::DnsSrv(d) => (
            "io.l5d.dnssrv",
            Arc::new(
                DnsSrvNamer::new(d.refresh_interval, &d.dns_hosts)
                    .map_err(|e| format!("namer {prefix}: {e}"))?,
            ),
        ),
        NamerConfig::Rewrite(r) => (
            "io.l5d.rewrite",
            Arc::new(RewriteNamer::new(r.pattern.clone(), r.name.clone())),
        ),
    };
    let namer: Arc<dyn Namer> = match n.transformers() {
        [] => namer,
        ts => Arc::new(TransformingNamer::new(
            namer,
            transformers(ts, &InetResolver::default()),
        )),
    };
    Ok(NamerEntry {
        prefix,
        kind: kind.to_owned(),
        namer,
    })
}

/// The transformers `configs` describe, in order; `inet` resolves the
/// `/$/inet` paths of `io.l5d.replace` and `io.l5d.const`. For a router's
/// `interpreter.transformers`, pass the interpreter's resolver and hand
/// the result to `Interpreter::with_transformers`.
pub fn transformers(configs: &[TransformerConfig], inet: &InetResolver) -> Vec<Transformer> {
    configs
        .iter()
        .map(|c| Transformer::new(c.kind.clone(), c.prefix.clone(), inet))
        .collect()
}

/// The running interpreter `ic` configures for router `label`: `None`
/// for `default`; starts its file watch or Consul long poll.
pub fn build_interpreter(
    ic: &InterpreterConfig,
    label: &str,
) -> Result<Option<Arc<dyn DtabInterpreter>>, String> {
    let err = |e: String| format!("router '{label}': interpreter: {e}");
    Ok(match &ic.kind {
        InterpreterKind::Default => None,
        InterpreterKind::Fs { dtab_file } => Some(Arc::new(
            FsDtabInterpreter::new(dtab_file.clone())
                .map_err(|e| err(format!("io.l5d.fs: {e}")))?,
        )),
        InterpreterKind::Consul(c) => Some(Arc::new(
            consul_kv_config(c)
                .and_then(ConsulDtabInterpreter::new)
                .map_err(err)?,
        )),
    })
}

/// Linkerd 1's namer counters (`lookups`, `service/opens`, …) and
/// Strait's watch gauges under `namer/<prefix>/`, read from the namer
/// when metrics are rendered.
fn register_consul_stats(registry: &Registry, prefix: &Path, namer: &Arc<ConsulNamer>) {
    type Get = fn(&strait_namer_consul::ConsulStats) -> u64;
    let scope = Scope::Root(format!("namer{}", prefix.show()).into());
    let items: [(&str, bool, Get); 9] = [
        ("lookups", true, |s| s.lookups),
        ("service/opens", true, |s| s.opens),
        ("service/closes", true, |s| s.closes),
        ("service/errors", true, |s| s.errors),
        ("service/updates", true, |s| s.updates),
        ("service/refused", true, |s| s.refused),
        ("requests", true, |s| s.requests),
        ("watches", false, |s| s.watches as u64),
        ("max_watches", false, |s| s.max_watches as u64),
    ];
    for (name, counter, get) in items {
        let weak = Arc::downgrade(namer);
        registry.read_fn(
            &scope,
            name,
            counter,
            Arc::new(move || weak.upgrade().map_or(0, |n| get(&n.stats()) as i64)),
        );
    }
}
