//! Concrete name -> endpoint: the attempt loop.
//!
//! One request, once routed to a client, becomes one or more attempts: pick
//! an endpoint from the client's balancer, send, classify what came back,
//! and [`decide`] what comes next. Two kinds of second attempt exist, as in
//! Linkerd 1 (see [`crate::retry`]): a *requeue* of a request that never
//! left the router, and a *retry* of one the classifier calls a retryable
//! failure.
//!
//! Nothing here knows HTTP/1 framing: the protocol is an [`Exchange`]
//! (send one attempt to an address, classify its response), so an h2
//! router can use the same loop, balancers, budgets and timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use strait_balancer::{Lease, Outcome};

use crate::client::Client;
use crate::guard::OverrideGuard;
use crate::retry::{ResponseClass, RetryBackoff};
use crate::service::Service;

/// Requeues of one request at most (Finagle's `RequeueFilter` cap), besides
/// the budget.
pub(crate) const MAX_REQUEUES: u32 = 25;

/// How one attempt failed to get a response.
#[derive(Debug)]
pub enum SendFailure {
    /// Nothing reached the endpoint: no connection could be made, or the
    /// one made closed before the request was written. The reason, when
    /// it is worth telling the caller (a failed TLS handshake).
    NotSent(Option<String>),
    /// The request was, or may have been, written; what went wrong.
    Lost(String),
    /// The attempt failed on this side: the client's own request body
    /// (broken off, bad framing, too slow, too large: 400, 408, 413) or the
    /// router's resources (out of descriptors: 503). Not the endpoint's
    /// fault.
    Local {
        /// 400, 408 or 413.
        status: http::StatusCode,
        /// What went wrong.
        message: String,
    },
    /// The deadline passed before the response's head came (the request
    /// may have been written).
    TimedOut,
}

/// One protocol's way to send an attempt and read what came back.
pub trait Exchange {
    /// A response, with whatever the protocol needs to finish it.
    type Response;

    /// Whether the request can be sent (again) now: its body was kept, or
    /// has not been taken by an attempt yet. Asked at each decision, since
    /// a body kept while it streams is complete only once it has ended.
    fn replayable(&self) -> bool;

    /// Sends one attempt to `addr`; [`SendFailure::TimedOut`] when the
    /// response's head has not come by `deadline`. (The exchange keeps
    /// the time itself: a pooled HTTP/1 connection re-arms its own timer
    /// rather than registering a new one for every request.)
    fn send(
        &mut self,
        addr: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = Result<Self::Response, SendFailure>> + Send;

    /// The response's status code and class.
    fn classify(&self, resp: &Self::Response) -> (u16, ResponseClass);

    /// The class of a failure after the request may have been written (a
    /// reset, an attempt timeout).
    fn classify_error(&self) -> ResponseClass;
}

/// What one attempt came to, as the decision sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempted {
    /// A response, classified.
    Responded(ResponseClass),
    /// Nothing reached the endpoint. `elsewhere`: another endpoint of
    /// the client is not known to be failing.
    NotSent {
        /// Some other endpoint is alive (or may be probed).
        elsewhere: bool,
    },
    /// No response after the request may have been written (reset,
    /// `requestAttemptTimeoutMs`), classified as an error.
    Lost(ResponseClass),
    /// Failed on this side (see [`SendFailure::Local`]): never sent
    /// again, never blamed on the endpoint.
    Local,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Give the response to the caller.
    Return,
    /// Send the unsent request to another endpoint, now.
    Requeue,
    /// Send the request again, to another endpoint, after this pause.
    Retry(Duration),
    /// Give up: report this attempt's failure to the caller.
    Fail,
}

/// The two budgets a second attempt draws on. Each call withdraws when it
/// says yes, and counts the refusal when it says no.
pub trait Budgets {
    /// One retry from the service's `retries.budget`.
    fn retry(&mut self) -> bool;
    /// One requeue from the client's `requeueBudget`.
    fn requeue(&mut self) -> bool;
}

/// A request's attempts so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tries {
    /// Retries made.
    pub retries: u32,
    /// Requeues made.
    pub requeues: u32,
    /// The last retry pause (the backoff's input for the next).
    pub pause: Duration,
}

/// Decides what follows an attempt. Budgets are asked only when the rest
/// of the rule allows a second attempt, so a refusal is counted only where
/// a budget really was the reason.
///
/// * a success, or a failed response that may not be retried, is returned;
/// * an unsent request is requeued when its body was kept, within
///   [`MAX_REQUEUES`]: free while another endpoint is not known to be
///   failing (a request that never left the router must not fail while a
///   live endpoint exists), else within the requeue budget, so a service
///   whose every endpoint fails still fails fast, without a storm;
/// * a retryable failure (response or lost request) is retried after the
///   backoff's pause, within the retry budget; else the failed response is
///   returned, or the lost request fails.
pub fn decide(
    attempt: Attempted,
    replayable: bool,
    tries: &mut Tries,
    backoff: &RetryBackoff,
    budgets: &mut impl Budgets,
) -> Decision {
    let retry = |tries: &mut Tries| {
        tries.retries += 1;
        tries.pause = backoff.next(tries.pause);
        Decision::Retry(tries.pause)
    };
    match attempt {
        Attempted::Responded(ResponseClass::Success | ResponseClass::Pending) => Decision::Return,
        Attempted::Responded(ResponseClass::Failure { retryable }) => {
            if retryable && budgets.retry() {
                retry(tries)
            } else {
                Decision::Return
            }
        }
        Attempted::NotSent { elsewhere } => {
            if replayable && tries.requeues < MAX_REQUEUES && (elsewhere || budgets.requeue()) {
                tries.requeues += 1;
                Decision::Requeue
            } else {
                Decision::Fail
            }
        }
        Attempted::Local => Decision::Fail,
        Attempted::Lost(class) => {
            if matches!(class, ResponseClass::Failure { retryable: true }) && budgets.retry() {
                retry(tries)
            } else {
                Decision::Fail
            }
        }
    }
}

/// A request's response, from the attempt that returned it.
pub struct Answered<R> {
    /// The response.
    pub response: R,
    /// The endpoint's lease: finish it when the response body ends.
    pub lease: Lease,
    /// What the classifier made of it, for the lease.
    pub outcome: Outcome,
}

/// Why the last attempt got no response the caller can have.
#[derive(Debug)]
pub enum AttemptError {
    /// The balancer had no endpoint to pick.
    NoEndpoints,
    /// No connection could be made to `0`, and no requeue was allowed;
    /// `1` says why, when known (a failed TLS handshake).
    ConnectFailed(SocketAddr, Option<String>),
    /// The request to `addr` failed after it may have been written.
    Lost {
        /// The endpoint.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// `requestAttemptTimeoutMs` passed on the last attempt.
    TimedOut(Duration),
    /// The backend did not begin its response within `responseTimeoutMs`.
    NoResponse(Duration),
    /// The attempt failed on this side (the client's body, the router's
    /// resources).
    Local {
        /// 400, 408 or 413.
        status: http::StatusCode,
        /// What went wrong.
        message: String,
    },
    /// The request was bound under a dtab override, and the picked
    /// endpoint is one an override may not reach (see [`crate::guard`]).
    Forbidden(String),
}

/// The budgets of a client and a service, counting into their stats.
struct Live<'a> {
    client: &'a Client,
    service: &'a Service,
}

impl Budgets for Live<'_> {
    fn retry(&mut self) -> bool {
        let svc = self.service;
        if svc.budget.try_withdraw() {
            true
        } else {
            svc.budget_exhausted.incr();
            false
        }
    }

    fn requeue(&mut self) -> bool {
        let c = self.client;
        if c.requeue_budget.try_withdraw() {
            true
        } else {
            c.stats.requeue_budget_exhausted.incr();
            false
        }
    }
}

/// Sends `ex`'s request to `client`'s endpoints until an attempt answers
/// or [`decide`] gives up. A second attempt avoids the endpoint of the one
/// before.
///
/// With a `guard` (the request was bound under a dtab override), every
/// picked endpoint is checked first; one the guard refuses ends the
/// request with [`AttemptError::Forbidden`], nothing sent and nothing
/// recorded against the endpoint.
pub async fn run<E: Exchange>(
    ex: &mut E,
    client: &Client,
    svc: &Service,
    guard: Option<&OverrideGuard>,
) -> Result<Answered<E::Response>, AttemptError> {
    // One clock read for both budgets.
    // (tokio's clock: the attempt's timer runs on it.)
    let now = tokio::time::Instant::now();
    svc.budget.deposit_at(now.into_std());
    client.requeue_budget.deposit_at(now.into_std());
    let backoff = &svc.policy.backoff;
    let mut budgets = Live {
        client,
        service: svc,
    };
    let mut tries = Tries::default();
    let mut avoid = None;
    let mut first = true;
    loop {
        let lease = client
            .balancer
            .pick(avoid)
            .ok_or(AttemptError::NoEndpoints)?;
        let addr = lease.addr();
        if let Some(g) = guard
            && let Err(why) = g.check(&client.id, addr)
        {
            // Dropped unfinished: the endpoint is not to blame.
            drop(lease);
            return Err(AttemptError::Forbidden(why));
        }
        avoid = Some(addr);
        // The first attempt starts at the clock reading the budgets took.
        let start = if std::mem::take(&mut first) {
            now
        } else {
            tokio::time::Instant::now()
        };
        let pause = match attempt(ex, client, addr, start).await {
            Ok((response, class)) => {
                let attempted = Attempted::Responded(class);
                match decide(
                    attempted,
                    ex.replayable(),
                    &mut tries,
                    backoff,
                    &mut budgets,
                ) {
                    Decision::Retry(pause) => {
                        lease.finish(Outcome::Failure);
                        Some(pause)
                    }
                    _ => {
                        let retries = Duration::from_millis(u64::from(tries.retries));
                        svc.per_request.record(retries);
                        // A pending class is settled when the stream ends:
                        // the exchange's response body finishes the lease.
                        let outcome = match class {
                            ResponseClass::Success | ResponseClass::Pending => Outcome::Success,
                            ResponseClass::Failure { .. } => Outcome::Failure,
                        };
                        return Ok(Answered {
                            response,
                            lease,
                            outcome,
                        });
                    }
                }
            }
            Err((attempted, failure)) => {
                // Finished before deciding, so a refused endpoint is known
                // dead when the decision asks whether another is alive.
                let attempted = match attempted {
                    Attempted::NotSent { .. } => {
                        lease.finish(Outcome::NotConnected);
                        let elsewhere = client.balancer.has_usable_except(Some(addr));
                        Attempted::NotSent { elsewhere }
                    }
                    // Released without an outcome: accrual sees nothing.
                    Attempted::Local => {
                        drop(lease);
                        attempted
                    }
                    other => {
                        lease.finish(Outcome::Failure);
                        other
                    }
                };
                match decide(
                    attempted,
                    ex.replayable(),
                    &mut tries,
                    backoff,
                    &mut budgets,
                ) {
                    Decision::Requeue => None,
                    Decision::Retry(pause) => Some(pause),
                    Decision::Return | Decision::Fail => return Err(failure),
                }
            }
        };
        match pause {
            None => client.stats.requeues.incr(),
            Some(pause) => {
                svc.retries.incr();
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// One attempt to `addr`, within `requestAttemptTimeoutMs`, counted in the
/// client's stats: the response and its class, or what the attempt came to
/// and the error to give if it is the last.
async fn attempt<E: Exchange>(
    ex: &mut E,
    client: &Client,
    addr: SocketAddr,
    start: tokio::time::Instant,
) -> Result<(E::Response, ResponseClass), (Attempted, AttemptError)> {
    let stats = &client.stats;
    let pending = stats.pending.enter();
    // Both bound the wait for the response head: the shorter one cuts it.
    let policy = &client.policy;
    let (limit, cut): (_, fn(Duration) -> AttemptError) = match policy.attempt_timeout {
        Some(t) if t <= policy.response_timeout => (t, AttemptError::TimedOut),
        _ => (policy.response_timeout, AttemptError::NoResponse),
    };
    // Pinned where it is, awaited through a pointer: not moved into the
    // awaiting state (a copy of the exchange's state per request).
    let res = std::pin::pin!(ex.send(addr, start + limit)).await;
    drop(pending);
    stats.requests.incr();
    let failed = |attempted, e| {
        stats.failures.incr();
        Err((attempted, e))
    };
    match res {
        Ok(response) => {
            let (code, class) = ex.classify(&response);
            stats.status(code);
            stats.latency.record(start.elapsed());
            match class {
                ResponseClass::Success => stats.success.incr(),
                ResponseClass::Failure { .. } => stats.failures.incr(),
                // Counted when the stream ends.
                ResponseClass::Pending => {}
            }
            Ok((response, class))
        }
        Err(SendFailure::NotSent(why)) => {
            stats.connect_failures.incr();
            client.connect_failed(addr, why.as_deref());
            let unsent = Attempted::NotSent { elsewhere: false };
            failed(unsent, AttemptError::ConnectFailed(addr, why))
        }
        Err(SendFailure::Local { status, message }) => {
            Err((Attempted::Local, AttemptError::Local { status, message }))
        }
        Err(SendFailure::Lost(message)) => failed(
            Attempted::Lost(ex.classify_error()),
            AttemptError::Lost { addr, message },
        ),
        Err(SendFailure::TimedOut) => failed(Attempted::Lost(ex.classify_error()), cut(limit)),
    }
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
