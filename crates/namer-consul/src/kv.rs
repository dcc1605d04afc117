//! `io.l5d.consul.interpreter`: the stored dtab is a Consul KV value,
//! `<pathPrefix>/<namespace>` (default `/namerd/dtabs/default`), watched
//! with a blocking query.
//!
//! The loop reads `GET /v1/kv<pathPrefix>/<ns>?raw=true[&index=N&wait=…][&dc=…]`:
//!
//! | Consul says | stored dtab | admin state |
//! | --- | --- | --- |
//! | 200, a valid dtab | that dtab | `{"version", "dtab"}` |
//! | 200, not a dtab | the last good one (logged: `consul ns <ns> dtab parsing failed: …`) | the parse error |
//! | 404 (no key) | empty: the router dtab alone; keeps blocking on the 404's index | `{"version", "dtab": ""}` |
//! | 5xx, 429, timeouts, refused connections | the last good one; backoff, retry without index | unchanged once good, else the error |
//! | 403 and other statuses | the last good one; backoff, retry without index | the error |
//!
//! The index rules are the namer's ([`crate::client::next_index`]: never 0,
//! reset when it goes backwards); answers that keep coming back at once
//! are paced by the same token bucket. There is one loop per interpreter,
//! so `failFast` has nothing to share: the loop's own backoff is all it
//! does.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use strait_dtab::Dtab;
use strait_naming::stored::{DtabInterpreter, DtabStore, StoredDtab};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::client::{
    ConsulClient, ConsulError, HyperTransport, RawResponse, Transport, encode_into, format_wait,
    next_index, parse_index,
};
use crate::pace::{Backoff, TokenBucket};
use crate::{Consistency, ConsulConfig};

/// The interpreter's settings: the connection part is the namer's
/// ([`ConsulConfig`]: `host`, `port`, `token`, consistency, `failFast`,
/// `backoff`, `wait`), plus where the dtab lives.
#[derive(Clone, Debug, PartialEq)]
pub struct KvConfig {
    /// Host, port, token, read consistency, backoff and blocking wait.
    pub consul: ConsulConfig,
    /// `pathPrefix` (default `/namerd/dtabs`).
    pub path_prefix: String,
    /// `namespace` (default `default`): `[A-Za-z0-9_-]+`.
    pub namespace: String,
    /// `datacenter` (`?dc=`); `None` is the agent's.
    pub datacenter: Option<String>,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            consul: ConsulConfig::default(),
            path_prefix: "/namerd/dtabs".into(),
            namespace: "default".into(),
            datacenter: None,
        }
    }
}

/// Whether `ns` is a namespace Namerd accepts (`[A-Za-z0-9_-]+`).
pub fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl KvConfig {
    /// Every problem with the configuration, or nothing.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Err(e) = self.consul.validate() {
            errors.push(e.trim_start_matches("io.l5d.consul: ").to_owned());
        }
        if !valid_namespace(&self.namespace) {
            errors.push(format!(
                "namespace {:?} must match [A-Za-z0-9_-]+",
                self.namespace
            ));
        }
        if !self.path_prefix.starts_with('/') {
            errors.push(format!(
                "pathPrefix {:?} must start with '/'",
                self.path_prefix
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("io.l5d.consul.interpreter: {}", errors.join("; ")))
        }
    }

    /// The KV key's path and query; `index` makes it a blocking read.
    pub fn url(&self, index: Option<u64>) -> String {
        let mut url = String::from("/v1/kv");
        let segments = self.path_prefix.split('/').filter(|s| !s.is_empty());
        for segment in segments.chain(std::iter::once(self.namespace.as_str())) {
            url.push('/');
            encode_into(&mut url, segment);
        }
        url.push_str("?raw=true");
        if let Some(index) = index {
            url.push_str(&format!(
                "&index={index}&wait={}",
                format_wait(self.consul.wait)
            ));
        }
        if let Some(dc) = &self.datacenter {
            url.push_str("&dc=");
            encode_into(&mut url, dc);
        }
        match self.consul.consistency {
            Consistency::Default => {}
            Consistency::Stale => url.push_str("&stale=true"),
            Consistency::Consistent => url.push_str("&consistent=true"),
        }
        url
    }
}

/// The last request, for the admin's `poll` view.
#[derive(Debug, Default)]
struct Poll {
    request: String,
    index: Option<u64>,
    requests: u64,
    last_error: Option<String>,
}

/// The running interpreter; its loop stops when it is dropped.
pub struct ConsulDtabInterpreter {
    namespace: String,
    store: Arc<DtabStore>,
    poll: Arc<Mutex<Poll>>,
    task: AbortHandle,
}

impl fmt::Debug for ConsulDtabInterpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulDtabInterpreter")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl ConsulDtabInterpreter {
    /// Starts watching `cfg`'s key over HTTP. Must be called inside a
    /// tokio runtime.
    pub fn new(cfg: KvConfig) -> Result<ConsulDtabInterpreter, String> {
        let transport =
            HyperTransport::new(&cfg.consul.host, cfg.consul.port, cfg.consul.tls.as_ref())?;
        ConsulDtabInterpreter::with_transport(cfg, Arc::new(transport))
    }

    /// Starts watching `cfg`'s key over `transport`.
    pub fn with_transport(
        cfg: KvConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<ConsulDtabInterpreter, String> {
        cfg.validate()?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| "io.l5d.consul.interpreter: needs a tokio runtime".to_owned())?;
        let client = ConsulClient::new(transport, &cfg.consul);
        let store = Arc::new(DtabStore::new());
        let poll = Arc::new(Mutex::new(Poll::default()));
        let namespace = cfg.namespace.clone();
        let task = rt
            .spawn(run(cfg, client, Arc::downgrade(&store), Arc::clone(&poll)))
            .abort_handle();
        Ok(ConsulDtabInterpreter {
            namespace,
            store,
            poll,
            task,
        })
    }
}

impl Drop for ConsulDtabInterpreter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DtabInterpreter for ConsulDtabInterpreter {
    fn kind(&self) -> &'static str {
        "io.l5d.consul.interpreter"
    }

    fn subscribe(&self) -> watch::Receiver<StoredDtab> {
        self.store.subscribe()
    }

    fn state(&self) -> Value {
        let mut state = self.store.state_json();
        let poll = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        state["poll"] = json!({
            "request": poll.request,
            "index": poll.index,
            "requests": poll.requests,
            "lastError": poll.last_error,
        });
        json!({ self.namespace.clone(): state })
    }
}

/// The watch loop: one blocking read after another while the store lives.
async fn run(
    cfg: KvConfig,
    client: ConsulClient,
    store: std::sync::Weak<DtabStore>,
    poll: Arc<Mutex<Poll>>,
) {
    let ns = cfg.namespace.clone();
    let mut backoff = Backoff::new(cfg.consul.backoff);
    let mut bucket = TokenBucket::new(10, Duration::from_millis(100));
    let mut index: Option<u64> = None;
    loop {
        let url = cfg.url(index);
        {
            let mut p = poll.lock().unwrap_or_else(PoisonError::into_inner);
            p.request.clone_from(&url);
            p.requests += 1;
        }
        let answer = client.get(&url, client.timeout(index.is_some())).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        let step = match answer {
            Ok(raw) => answer_step(&ns, &store, &raw),
            Err(e) => Err(e),
        };
        let ok = {
            let mut p = poll.lock().unwrap_or_else(PoisonError::into_inner);
            match &step {
                Ok(i) => {
                    p.last_error = None;
                    index = next_index(index, *i);
                }
                Err(e) => {
                    p.last_error = Some(e.to_string());
                    on_error(&ns, &store, e);
                    index = None;
                }
            }
            p.index = index;
            index.is_some()
        };
        drop(store);
        let wait = if ok {
            backoff.reset();
            bucket.take(Instant::now())
        } else {
            backoff.next_delay()
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// An answer applied to the store: the index to block on next, or why
/// the read failed.
fn answer_step(ns: &str, store: &DtabStore, raw: &RawResponse) -> Result<u64, ConsulError> {
    if raw.status == StatusCode::NOT_FOUND {
        let i = parse_index(&raw.headers)?;
        if store.publish(Dtab::empty()) {
            tracing::info!(
                ns,
                "consul ns {ns}: no stored dtab (404); the router dtab alone"
            );
        }
        return Ok(i);
    }
    crate::client::check_status(raw)?;
    let i = parse_index(&raw.headers)?;
    let text = String::from_utf8_lossy(&raw.body);
    match Dtab::read(&text) {
        Ok(dtab) => {
            if store.publish(dtab) {
                tracing::info!(ns, dtab = %text, "consul ns {ns}: new stored dtab");
            }
        }
        Err(e) => {
            let message = format!("consul ns {ns} dtab parsing failed: {e}; dtab: '{text}'");
            if store.fail(message.clone()) {
                tracing::error!("{message}; keeping the last good dtab");
            }
        }
    }
    Ok(i)
}

/// A failed read: 5xx, 429 and transport failures keep a good state as it
/// is (the last good dtab routes); anything else (403…) is shown.
fn on_error(ns: &str, store: &DtabStore, e: &ConsulError) {
    let transient = match e.status() {
        Some(s) => s >= 500 || s == 429,
        None => true,
    };
    if transient && store.current().is_ready() {
        tracing::debug!(ns, error = %e, "consul ns {ns}: read failed; retrying");
        return;
    }
    let message = format!("consul ns {ns}: {e}");
    if store.fail(message.clone()) {
        tracing::warn!("{message}; retrying with backoff");
    }
}

#[cfg(test)]
#[path = "kv_tests.rs"]
mod tests;
