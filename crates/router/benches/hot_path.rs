//! Micro-benchmarks for the per-request hot path of a router: identifying a
//! request (Host header token, `io.l5d.methodAndHost`, `io.l5d.path`),
//! picking an endpoint from a balancer of 3, 100 and 1,000 endpoints (p2c,
//! ewma, round robin; pick + finish, as a request does), and the header
//! rewrites applied to a realistic request on its way through; and the
//! HTTP/1 client side (`http1::wire`): writing a request head, parsing a
//! response head, and a whole exchange with a backend over loopback.
//! Run with `cargo bench -p strait-router --bench hot_path`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request};
use strait_balancer::{Balancer, FailureAccrual, LoadBalancer, Outcome, SystemClock};
use strait_dtab::Path;
use strait_router::identify::Identifier;
use strait_router::trace::Trace;
use strait_router::{headers, http1};

fn request() -> Request<()> {
    let mut req = Request::get("/api/v1/users/42?expand=true")
        .body(())
        .unwrap();
    *req.headers_mut() = realistic_headers();
    req
}

/// The headers of an ordinary API call from a service behind a mesh.
fn realistic_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "users.default.svc"),
        ("user-agent", "Go-http-client/1.1"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip"),
        ("connection", "keep-alive, x-trace"),
        ("keep-alive", "timeout=5"),
        ("x-trace", "1"),
        (
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl",
        ),
        ("x-request-id", "7f9c2ba4-e88f-11e6-8a4f-5f1a0ef1f7c0"),
        (
            "l5d-ctx-trace",
            "AAAAAAAAAAEAAAAAAAAAAQAAAAAAAAABAAAAAAAAAAA=",
        ),
        (
            "l5d-ctx-deadline",
            "1700000000000000000 1700000001000000000",
        ),
        ("l5d-dst-service", "/svc/users"),
        ("via", "1.1 linkerd"),
        ("content-type", "application/json"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

fn identify(c: &mut Criterion) {
    let prefix = Path::read("/svc").unwrap();
    let req = request();
    let mut g = c.benchmark_group("identify");
    let ids = [
        (
            "header.token Host",
            Identifier::HeaderToken { header: HOST },
        ),
        (
            "methodAndHost",
            Identifier::MethodAndHost { uri_in_dst: false },
        ),
        (
            "path 2 segments",
            Identifier::Path {
                segments: 2,
                consume: false,
            },
        ),
    ];
    for (name, id) in ids {
        g.bench_function(name, |b| {
            b.iter(|| black_box(id.identify(black_box(&prefix), black_box(&req)).unwrap()))
        });
    }
    g.finish();
}

fn balancer(c: &mut Criterion) {
    let mut g = c.benchmark_group("balancer pick+finish");
    let kinds = [
        ("p2c", LoadBalancer::P2c { max_effort: 5 }),
        ("ewma", LoadBalancer::ewma()),
        ("roundRobin", LoadBalancer::round_robin()),
    ];
    for (kind, lb) in kinds {
        for n in [3usize, 100, 1000] {
            let bal = Balancer::new(lb, FailureAccrual::default(), Arc::new(SystemClock), 7);
            let eps: Vec<(SocketAddr, f64)> = (0..n)
                .map(|i| {
                    (
                        SocketAddr::from(([10, (i / 250) as u8, (i % 250) as u8, 1], 8080)),
                        1.0,
                    )
                })
                .collect();
            bal.update(&eps);
            g.bench_function(format!("{kind}/{n}"), |b| {
                b.iter(|| {
                    let lease = bal.pick(black_box(None)).unwrap();
                    black_box(lease.addr());
                    lease.finish(Outcome::Success);
                })
            });
        }
    }
    g.finish();
}

fn header_rewrites(c: &mut Criterion) {
    // Made once per service and client by the router.
    let service =
        HeaderValue::from_str(&Path::read("/svc/users.default.svc").unwrap().show()).unwrap();
    let client =
        HeaderValue::from_str(&Path::read("/$/inet/10.0.0.7/8080").unwrap().show()).unwrap();
    let residual = Path::empty();
    let remote: SocketAddr = "10.1.2.3:54321".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:4140".parse().unwrap();
    let mut g = c.benchmark_group("headers");
    g.bench_function("clone (baseline)", |b| {
        let h = realistic_headers();
        b.iter(|| black_box(h.clone()))
    });
    g.bench_function("strip_hop_by_hop", |b| {
        b.iter_batched_ref(
            realistic_headers,
            http1::strip_hop_by_hop,
            BatchSize::SmallInput,
        )
    });
    g.bench_function("take_local_dtab (none)", |b| {
        b.iter_batched_ref(
            realistic_headers,
            |h| black_box(headers::take_local_dtab(h).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("take_local_dtab (l5d-dtab 2 dentries)", |b| {
        b.iter_batched_ref(
            || {
                let mut h = realistic_headers();
                h.insert(
                    "l5d-dtab",
                    HeaderValue::from_static("/svc/users => /srv/users-v2; /srv => /#/io.l5d.fs"),
                );
                h
            },
            |h| black_box(headers::take_local_dtab(h).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("trace: take + write (no trace headers)", |b| {
        b.iter_batched_ref(
            realistic_headers,
            |h| Trace::take(h).write(h),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("trace: take + write (traceparent + tracestate)", |b| {
        b.iter_batched_ref(
            || {
                let mut h = realistic_headers();
                h.insert(
                    "traceparent",
                    HeaderValue::from_static(
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    ),
                );
                h.insert("tracestate", HeaderValue::from_static("congo=t61rcWkgMzE"));
                h
            },
            |h| Trace::take(h).write(h),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("full request rewrite", |b| {
        b.iter_batched_ref(
            realistic_headers,
            |h| {
                http1::strip_hop_by_hop(h);
                let local_dtab = headers::take_local_dtab(h).unwrap();
                headers::strip_l5d(h);
                http1::append_via(h);
                black_box(http1::via_depth(h));
                headers::add_forwarded(h, remote, local);
                headers::set_l5d(
                    h,
                    Some(&service),
                    Some(&client),
                    &residual,
                    local_dtab.as_ref().map(|l| &*l.text),
                );
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A typical backend response head (nginx's, with a JSON body).
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\
Date: Mon, 07 Dec 2026 10:00:00 GMT\r\nContent-Type: application/json\r\n\
Content-Length: 64\r\nConnection: keep-alive\r\nETag: \"6571a2b0-40\"\r\n\
Accept-Ranges: bytes\r\n\r\n";

fn wire(c: &mut Criterion) {
    use bytes::{Bytes, BytesMut};
    use http_body_util::{BodyExt, Either, Full};
    use strait_router::http1::wire::{self, RequestHead};

    let mut g = c.benchmark_group("http1 client");
    let mut headers = realistic_headers();
    http1::strip_hop_by_hop(&mut headers);
    let head = RequestHead {
        method: &http::Method::GET,
        path_and_query: "/api/v1/users/42?expand=true",
        headers: &headers,
        opaque: &[],
        lines: None,
    };
    let empty: strait_router::client::ReqBody = Either::Right(Full::new(Bytes::new()));
    let mut buf = Vec::with_capacity(1024);
    g.bench_function("write a request head (13 headers)", |b| {
        b.iter(|| black_box(wire::encode_head(&mut buf, black_box(&head), &empty)))
    });
    g.bench_function("parse a response head (8 headers)", |b| {
        b.iter_batched_ref(
            || BytesMut::from(RESPONSE_HEAD),
            |buf| black_box(wire::parse_head(buf).unwrap().unwrap()),
            BatchSize::SmallInput,
        )
    });
    // What the server writes of it: the end-to-end fields, as they came.
    let mut out = Vec::with_capacity(1024);
    g.bench_function(
        "parse a response head and write its fields back (8 headers)",
        |b| {
            b.iter_batched_ref(
                || BytesMut::from(RESPONSE_HEAD),
                |buf| {
                    let head = wire::parse_head(buf).unwrap().unwrap();
                    out.clear();
                    if let Some(f) = &head.fields {
                        f.write(&mut out);
                    }
                    black_box(out.len())
                },
                BatchSize::SmallInput,
            )
        },
    );

    // One exchange on a kept-alive connection to a backend on loopback
    // that answers every request with RESPONSE_HEAD and 64 bytes: the
    // client's whole per-request path, system calls included.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut answer = RESPONSE_HEAD.to_vec();
                    answer.extend_from_slice(&[b'x'; 64]);
                    let mut req = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&chunk[..n]),
                        }
                        while let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                            req.drain(..end + 4);
                            if s.write_all(&answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    });
    let pool = Arc::new(strait_router::pool::Pool::new(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
        None,
    ));
    g.bench_function("exchange over loopback (GET, 64-byte body)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let body = Either::Right(Full::new(Bytes::new()));
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                let resp = pool.send(addr, &head, body, deadline).await.unwrap();
                black_box(resp.into_body().collect().await.unwrap());
            })
        })
    });
    g.finish();
}

criterion_group!(benches, identify, balancer, header_rewrites, wire, server);
/// A request head as curl sends it through `http_proxy`, with a few
/// service headers.
const REQUEST_HEAD: &[u8] = b"GET /api/v1/users/42?expand=true HTTP/1.1\r\nHost: users\r\n\
User-Agent: curl/8.5.0\r\nAccept: */*\r\nAuthorization: Bearer abcdefghijklmnop\r\n\
X-Request-Id: 5f2b8c1e-8d2a-4a57-9e0b-6f1f3b2a9c11\r\nAccept-Encoding: gzip\r\n\
Cookie: session=0123456789abcdef\r\nConnection: keep-alive\r\n\r\n";

/// The router's HTTP/1.1 server side: the head parser, and one request
/// served on an in-memory connection by a service answering 64 bytes.
fn server(c: &mut Criterion) {
    use bytes::{Bytes, BytesMut};
    use http_body_util::Full;
    use http1::serve;
    let mut g = c.benchmark_group("http1 server");
    let limits = serve::Limits {
        header_timeout: std::time::Duration::from_secs(30),
        max_headers: 100,
        max_head: 64 * 1024,
        send_timeout: std::time::Duration::from_secs(60),
    };
    g.bench_function("parse a request head (8 headers)", |b| {
        b.iter_batched_ref(
            || BytesMut::from(REQUEST_HEAD),
            |buf| black_box(serve::parse_head(buf, &limits).unwrap().unwrap()),
            BatchSize::SmallInput,
        )
    });

    // What one Strait sends the next in a chain: this hop's l5d-* fields.
    const HOP_HEAD: &[u8] = b"GET /api/v1/users/42 HTTP/1.1\r\nhost: users\r\n\
user-agent: curl/8.5.0\r\naccept: */*\r\nvia: 1.1 strait\r\n\
l5d-dst-service: /svc/users\r\nl5d-dst-client: /#/io.l5d.fs/users\r\n\
l5d-ctx-trace: AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAA=\r\nl5d-reqid: 0000000000000002\r\n\r\n";
    g.bench_function(
        "parse a request head from another hop (8 fields, 4 l5d-*)",
        |b| {
            b.iter_batched_ref(
                || BytesMut::from(HOP_HEAD),
                |buf| black_box(serve::parse_head(buf, &limits).unwrap().unwrap()),
                BatchSize::SmallInput,
            )
        },
    );

    struct Ok64;
    impl serve::Service for Ok64 {
        type Body = Full<Bytes>;
        fn call(
            &self,
            _: Box<Request<strait_router::body::RequestBody>>,
        ) -> impl std::future::Future<Output = Box<http::Response<Full<Bytes>>>> + Send {
            std::future::ready(Box::new(http::Response::new(Full::new(
                Bytes::from_static(&[b'x'; 64]),
            ))))
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    rt.spawn(async move { serve::serve(&Ok64, Box::new(server), limits, None).await });
    let mut answer = vec![0u8; 4096];
    g.bench_function("serve a GET in memory (parse, answer, 64-byte body)", |b| {
        b.iter(|| {
            rt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                client.write_all(REQUEST_HEAD).await.unwrap();
                let mut got = 0;
                // The head and the 64 bytes, in one write.
                while got == 0 || !answer[..got].ends_with(&[b'x'; 64]) {
                    got += client.read(&mut answer[got..]).await.unwrap();
                }
                black_box(got)
            })
        })
    });
    g.finish();
}

criterion_main!(benches);
