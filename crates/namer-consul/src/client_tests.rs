use super::*;

/// A health answer as Consul sends it (`GET /v1/health/service/web`): two
/// instances, the second with an empty service address and a warning check.
pub(crate) const A6_HEALTH: &str = r#"[
  {
    "Node": {
      "ID": "4e6c2f0a-1b7d-4c53-9a44-0d3f5b2e8c11",
      "Node": "host-a",
      "Address": "127.0.0.11",
      "Datacenter": "dc1",
      "TaggedAddresses": {"lan": "127.0.0.11", "lan_ipv4": "127.0.0.11", "wan": "127.0.0.11", "wan_ipv4": "127.0.0.11"},
      "Meta": {"consul-network-segment": ""},
      "CreateIndex": 12,
      "ModifyIndex": 14
    },
    "Service": {
      "ID": "web-a-1",
      "Service": "web",
      "Tags": ["primary", "v2"],
      "Address": "127.0.0.21",
      "TaggedAddresses": {"lan_ipv4": {"Address": "127.0.0.21", "Port": 8080}},
      "Meta": {"version": "2.4.1"},
      "Port": 8080,
      "Weights": {"Passing": 10, "Warning": 1},
      "EnableTagOverride": false,
      "CreateIndex": 1001,
      "ModifyIndex": 1001
    },
    "Checks": [
      {"Node": "host-a", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
       "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [],
       "CreateIndex": 12, "ModifyIndex": 12},
      {"Node": "host-a", "CheckID": "service:web-a-1", "Name": "Service 'web' check", "Status": "passing",
       "Notes": "", "Output": "", "ServiceID": "web-a-1", "ServiceName": "web", "ServiceTags": ["primary", "v2"],
       "CreateIndex": 1001, "ModifyIndex": 1038}
    ]
  },
  {
    "Node": {
      "ID": "9b0d7e55-83aa-4f0e-b0a2-6c1e4d9f7a02",
      "Node": "host-b",
      "Address": "127.0.0.12",
      "Datacenter": "dc1",
      "TaggedAddresses": {"lan": "127.0.0.12", "wan": "127.0.0.12"},
      "Meta": {},
      "CreateIndex": 13,
      "ModifyIndex": 15
    },
    "Service": {
      "ID": "web-b-1",
      "Service": "web",
      "Tags": ["v2"],
      "Address": "",
      "TaggedAddresses": {},
      "Meta": {},
      "Port": 8080,
      "Weights": {"Passing": 1, "Warning": 1},
      "EnableTagOverride": false,
      "CreateIndex": 1003,
      "ModifyIndex": 1003
    },
    "Checks": [
      {"Node": "host-b", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
       "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [],
       "CreateIndex": 13, "ModifyIndex": 13},
      {"Node": "host-b", "CheckID": "web-b-ttl", "Name": "web TTL", "Status": "warning",
       "Notes": "", "Output": "queue depth high", "ServiceID": "web-b-1", "ServiceName": "web", "ServiceTags": ["v2"],
       "CreateIndex": 1003, "ModifyIndex": 1057}
    ]
  }
]"#;

/// Consul's `GET /v1/agent/self` answer, trimmed.
pub(crate) const A6_AGENT_SELF: &str = r#"{
  "Config": {
    "Datacenter": "dc1",
    "NodeName": "host-a",
    "NodeID": "4e6c2f0a-1b7d-4c53-9a44-0d3f5b2e8c11",
    "Server": false,
    "Revision": "0a1b2c3d",
    "Version": "1.20.2"
  },
  "Coord": {"Adjustment": 0, "Error": 1.5, "Vec": [0, 0, 0, 0, 0, 0, 0, 0]},
  "Member": {
    "Name": "host-a", "Addr": "127.0.0.11", "Port": 8301,
    "Tags": {"dc": "dc1", "role": "node", "segment": ""},
    "Status": 1
  },
  "Meta": {"consul-network-segment": ""}
}"#;

/// The catalog's flat shape (`GET /v1/catalog/service/web`) for the same two
/// instances.
const CATALOG: &str = r#"[
  {"ID": "4e6c2f0a", "Node": "host-a", "Address": "127.0.0.11", "Datacenter": "dc1",
   "TaggedAddresses": {"lan": "127.0.0.11"}, "NodeMeta": {"rack": "r1"},
   "ServiceID": "web-a-1", "ServiceName": "web", "ServiceAddress": "127.0.0.21", "ServicePort": 8080,
   "ServiceTags": ["primary", "v2"], "ServiceMeta": {"version": "2.4.1"},
   "ServiceWeights": {"Passing": 10, "Warning": 1}, "CreateIndex": 1001, "ModifyIndex": 1001},
  {"ID": "9b0d7e55", "Node": "host-b", "Address": "127.0.0.12", "Datacenter": "dc1",
   "TaggedAddresses": null, "NodeMeta": null,
   "ServiceID": "web-b-1", "ServiceName": "web", "ServiceAddress": "", "ServicePort": 8080,
   "ServiceTags": null, "ServiceMeta": null, "CreateIndex": 1003, "ModifyIndex": 1003}
]"#;

/// A transport that always answers the same thing and records URLs.
struct Canned {
    response: RawResponse,
    seen: std::sync::Mutex<Vec<(String, Option<String>)>>,
}

impl Transport for Canned {
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
        token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RawResponse, TransportError>> {
        self.seen
            .lock()
            .unwrap()
            .push((path_and_query.to_owned(), token.map(str::to_owned)));
        let r = self.response.clone();
        Box::pin(async move { Ok(r) })
    }
}

fn client(cfg: &ConsulConfig, response: RawResponse) -> (ConsulClient, Arc<Canned>) {
    let t = Arc::new(Canned {
        response,
        seen: Default::default(),
    });
    (ConsulClient::new(t.clone(), cfg), t)
}

fn health_cfg() -> ConsulConfig {
    ConsulConfig {
        use_health_check: true,
        ..ConsulConfig::default()
    }
}

#[test]
fn urls_carry_dc_tag_index_wait_and_flags() {
    let (c, _) = client(&health_cfg(), RawResponse::new(200, Some("1"), "[]"));
    assert_eq!(
        c.service_url("dc1", None, "web", None),
        "/v1/health/service/web?dc=dc1&passing=true",
        "a first read has no index and no wait; [passing] is filtered by Consul"
    );
    assert_eq!(
        c.service_url("dc1", Some("primary"), "web", Some(1042)),
        "/v1/health/service/web?dc=dc1&tag=primary&index=1042&wait=300000ms&passing=true",
        "a blocking read sends the index and the wait in milliseconds"
    );
    let cfg = ConsulConfig {
        wait: Duration::from_micros(300),
        consistency: Consistency::Stale,
        ..ConsulConfig::default()
    };
    let (c, _) = client(&cfg, RawResponse::new(200, Some("1"), "[]"));
    assert_eq!(
        c.service_url("dc1", None, "web", Some(7)),
        "/v1/catalog/service/web?dc=dc1&index=7&wait=1ms&stale",
        "catalog reads; a sub-millisecond wait rounds up to 1ms, never 0ms (= 5 minutes)"
    );
    let cfg = ConsulConfig {
        consistency: Consistency::Consistent,
        use_health_check: true,
        health_statuses: vec![HealthStatus::Passing, HealthStatus::Warning],
        ..ConsulConfig::default()
    };
    let (c, _) = client(&cfg, RawResponse::new(200, Some("1"), "[]"));
    assert_eq!(
        c.service_url("dc1", None, "web", None),
        "/v1/health/service/web?dc=dc1&consistent",
        "passing=true only when healthStatuses is exactly [passing]"
    );
    let cfg = ConsulConfig {
        use_health_check: true,
        health_statuses: vec![HealthStatus::Passing, HealthStatus::Passing],
        ..ConsulConfig::default()
    };
    let (c, _) = client(&cfg, RawResponse::new(200, Some("1"), "[]"));
    assert!(
        c.service_url("dc1", None, "web", None)
            .ends_with("&passing=true"),
        "[passing, passing] is still just passing"
    );
}

#[test]
fn names_are_percent_encoded() {
    let (c, _) = client(
        &ConsulConfig::default(),
        RawResponse::new(200, Some("1"), "[]"),
    );
    assert_eq!(
        c.service_url("dc 1&x=y", Some("a/b?c#d"), "wéb+1%", None),
        "/v1/catalog/service/w%C3%A9b%2B1%25?dc=dc%201%26x%3Dy&tag=a%2Fb%3Fc%23d",
        "service, dc and tag cannot inject path segments or parameters"
    );
    let mut s = String::new();
    encode_into(&mut s, "A-z_0.9~");
    assert_eq!(s, "A-z_0.9~", "unreserved characters stay");
}

#[test]
fn timeouts_exceed_consuls_wait_and_jitter() {
    let cfg = ConsulConfig {
        wait: Duration::from_secs(160),
        ..ConsulConfig::default()
    };
    let (c, _) = client(&cfg, RawResponse::new(200, Some("1"), "[]"));
    assert_eq!(
        c.timeout(true),
        Duration::from_secs(160 + 10) + BLOCKING_SLACK,
        "wait + wait/16 + slack"
    );
    assert_eq!(c.timeout(false), NON_BLOCKING_TIMEOUT);
}

#[test]
fn index_header_rules() {
    let h = |v: Option<&str>| RawResponse::new(200, v, "").headers;
    assert_eq!(parse_index(&h(Some("1057"))), Ok(1057));
    assert_eq!(parse_index(&h(Some("0"))), Ok(1), "index 0 is clamped to 1");
    assert_eq!(
        parse_index(&h(None)),
        Err(ConsulError::MissingIndex),
        "a missing index is an error"
    );
    assert_eq!(
        ConsulError::MissingIndex.to_string(),
        "consul did not return an index"
    );
    assert!(
        matches!(parse_index(&h(Some("abc"))), Err(ConsulError::InvalidIndex(v)) if v == "abc")
    );
    assert!(matches!(
        parse_index(&h(Some("-3"))),
        Err(ConsulError::InvalidIndex(_))
    ));

    assert_eq!(
        next_index(None, 5),
        Some(5),
        "first read: block on what came back"
    );
    assert_eq!(
        next_index(Some(5), 9),
        Some(9),
        "forward: block on the new index"
    );
    assert_eq!(
        next_index(Some(5), 5),
        Some(5),
        "a wake without change keeps it"
    );
    assert_eq!(
        next_index(Some(9), 5),
        None,
        "backwards: start over without an index"
    );
    assert_eq!(next_index(None, 0), Some(1), "never block on 0");
}

#[tokio::test]
async fn a6_health_payload_decodes_with_node_address_fallback() {
    let cfg = ConsulConfig {
        use_health_check: true,
        health_statuses: vec![HealthStatus::Passing, HealthStatus::Warning],
        ..ConsulConfig::default()
    };
    let (c, _) = client(&cfg, RawResponse::new(200, Some("1057"), A6_HEALTH));
    let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
    assert_eq!(a.index, 1057);
    assert_eq!(a.entries, 2);
    let got: Vec<(&str, u16, HealthStatus)> = a
        .instances
        .iter()
        .map(|i| (i.address.as_str(), i.port, i.status))
        .collect();
    assert_eq!(
        got,
        [
            ("127.0.0.21", 8080, HealthStatus::Passing),
            ("127.0.0.12", 8080, HealthStatus::Warning)
        ],
        "the second instance has no service address: dial its node's"
    );
    assert_eq!(a.instances[0].node, "host-a");
    assert_eq!(a.instances[0].tags, ["primary", "v2"]);
    assert_eq!(a.instances[0].service_meta["version"], "2.4.1");
    assert!(
        a.instances[0]
            .node_meta
            .contains_key("consul-network-segment")
    );

    let cfg = ConsulConfig {
        prefer_service_address: false,
        ..cfg
    };
    let (c, _) = client(&cfg, RawResponse::new(200, Some("1057"), A6_HEALTH));
    let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        a.instances[0].address, "127.0.0.11",
        "preferServiceAddress: false always dials the node"
    );
}

#[tokio::test]
async fn health_statuses_filter_on_the_worst_check() {
    // [passing] alone: Consul filters with passing=true, and so do we.
    let (c, _) = client(
        &health_cfg(),
        RawResponse::new(200, Some("1057"), A6_HEALTH),
    );
    let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
    assert_eq!(a.entries, 2);
    assert_eq!(a.instances.len(), 1, "the warning instance is dropped");

    let body = r#"[
          {"Node": {"Node": "n1", "Address": "10.0.0.1"}, "Service": {"Port": 1},
           "Checks": [{"CheckID": "serfHealth", "Status": "critical"}, {"CheckID": "s", "Status": "passing"}]},
          {"Node": {"Node": "n2", "Address": "10.0.0.2"}, "Service": {"Port": 2},
           "Checks": [{"CheckID": "_node_maintenance", "Status": "critical"}]},
          {"Node": {"Node": "n3", "Address": "10.0.0.3"}, "Service": {"Port": 3},
           "Checks": [{"CheckID": "_service_maintenance:web-3", "Status": "critical"}, {"CheckID": "x", "Status": "warning"}]},
          {"Node": {"Node": "n4", "Address": "10.0.0.4"}, "Service": {"Port": 4},
           "Checks": [{"CheckID": "x", "Status": "weird"}]},
          {"Node": {"Node": "n5", "Address": "10.0.0.5"}, "Service": {"Port": 5}, "Checks": null}
        ]"#;
    let statuses = |s: Vec<HealthStatus>| ConsulConfig {
        use_health_check: true,
        health_statuses: s,
        ..ConsulConfig::default()
    };
    let ports = |cfg: ConsulConfig| {
        let (c, _) = client(&cfg, RawResponse::new(200, Some("3"), body));
        async move {
            let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
            a.instances.iter().map(|i| i.port).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ports(statuses(vec![HealthStatus::Passing])).await,
        [4, 5],
        "unknown statuses and no checks count as passing"
    );
    assert_eq!(
        ports(statuses(vec![HealthStatus::Critical])).await,
        [1],
        "a failing node check makes the instance critical"
    );
    assert_eq!(
        ports(statuses(vec![HealthStatus::Maintenance])).await,
        [2, 3],
        "maintenance checks are maintenance, the worst status"
    );
    assert_eq!(
        ports(statuses(vec![
            HealthStatus::Passing,
            HealthStatus::Warning,
            HealthStatus::Critical,
            HealthStatus::Maintenance
        ]))
        .await,
        [1, 2, 3, 4, 5]
    );
}

#[tokio::test]
async fn json_is_read_leniently() {
    let cfg = ConsulConfig {
        use_health_check: true,
        health_statuses: vec![HealthStatus::Passing, HealthStatus::Warning],
        ..ConsulConfig::default()
    };
    let body = r#"[
          {"Node": null, "Service": {"Address": "10.0.0.1", "Port": 80, "Tags": null, "Meta": null, "NewField": {"x": 1}},
           "Checks": null, "Extra": [1, 2]},
          {"Node": {"Address": "10.0.0.2"}, "Service": {"Port": 0}},
          {"Node": {"Address": ""}, "Service": {"Address": " ", "Port": 81}},
          {"Node": {"Address": "10.0.0.4"}, "Service": {"Port": 70000}},
          {"Node": {"Address": "10.0.0.5"}, "Service": {"Port": "82"}},
          {"Service": {"Address": "backend.internal", "Port": 83}},
          {}
        ]"#;
    let (c, _) = client(&cfg, RawResponse::new(200, Some("9"), body));
    let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
    assert_eq!(a.entries, 7);
    let got: Vec<(&str, u16)> = a
        .instances
        .iter()
        .map(|i| (i.address.as_str(), i.port))
        .collect();
    assert_eq!(
        got,
        [("10.0.0.1", 80), ("backend.internal", 83)],
        "nulls and unknown fields are fine; entries without a port or address are skipped"
    );
    for empty in ["null", "", "[]"] {
        let (c, _) = client(&cfg, RawResponse::new(200, Some("9"), empty));
        let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
        assert!(a.instances.is_empty(), "{empty:?} is the empty list");
    }
    let (c, _) = client(
        &cfg,
        RawResponse::new(200, Some("9"), "{\"not\": \"a list\"}"),
    );
    assert!(matches!(
        c.service("/x", Duration::from_secs(1)).await,
        Err(ConsulError::Decode(_))
    ));
}

#[tokio::test]
async fn catalog_payload_decodes() {
    let (c, _) = client(
        &ConsulConfig::default(),
        RawResponse::new(200, Some("1003"), CATALOG),
    );
    let a = c.service("/x", Duration::from_secs(1)).await.unwrap();
    let got: Vec<(&str, u16)> = a
        .instances
        .iter()
        .map(|i| (i.address.as_str(), i.port))
        .collect();
    assert_eq!(got, [("127.0.0.21", 8080), ("127.0.0.12", 8080)]);
    assert_eq!(a.instances[0].node_meta["rack"], "r1");
    assert!(a.instances[1].tags.is_empty(), "null tags are empty");
}

#[tokio::test]
async fn errors_carry_status_and_consuls_text() {
    for (status, body, check) in [
        (
            403,
            "ACL not found",
            ConsulError::is_forbidden as fn(&ConsulError) -> bool,
        ),
        (403, "Permission denied", ConsulError::is_forbidden),
        (
            500,
            "No path to datacenter",
            ConsulError::is_no_path_to_datacenter,
        ),
        (500, "No cluster leader", |e: &ConsulError| {
            e.status() == Some(500)
        }),
        (429, "", |e: &ConsulError| e.status() == Some(429)),
    ] {
        let (c, _) = client(
            &ConsulConfig::default(),
            RawResponse::new(status, Some("3"), body),
        );
        let e = c.service("/x", Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(
            e,
            ConsulError::Status {
                status,
                body: body.into()
            }
        );
        assert!(check(&e), "{e}");
        assert!(e.to_string().contains(&status.to_string()) && e.to_string().contains(body));
    }
    let (c, _) = client(&ConsulConfig::default(), RawResponse::new(200, None, "[]"));
    assert_eq!(
        c.service("/x", Duration::from_secs(1)).await,
        Err(ConsulError::MissingIndex),
        "a 200 without an index is an error"
    );
}

#[tokio::test]
async fn agent_self_gives_the_datacenter() {
    let (c, t) = client(
        &ConsulConfig::default(),
        RawResponse::new(200, None, A6_AGENT_SELF),
    );
    assert_eq!(c.agent_datacenter().await.unwrap(), "dc1");
    assert_eq!(t.seen.lock().unwrap()[0].0, AGENT_SELF);
    let (c, _) = client(
        &ConsulConfig::default(),
        RawResponse::new(200, None, "{\"Config\": null}"),
    );
    assert_eq!(c.agent_datacenter().await, Err(ConsulError::NoDatacenter));
}

#[tokio::test]
async fn the_token_is_a_header_never_in_the_url() {
    let cfg = ConsulConfig {
        token: Some("s3cr3t".into()),
        ..ConsulConfig::default()
    };
    let (c, t) = client(&cfg, RawResponse::new(200, Some("1"), "[]"));
    let url = c.service_url("dc1", None, "web", None);
    assert!(!url.contains("s3cr3t"));
    c.service(&url, Duration::from_secs(1)).await.unwrap();
    assert_eq!(t.seen.lock().unwrap()[0].1.as_deref(), Some("s3cr3t"));
    assert!(
        !format!("{c:?}").contains("s3cr3t"),
        "Debug redacts the token"
    );
}

#[test]
fn weights_take_the_highest_matching_tag() {
    let w = vec![
        ("canary".to_owned(), 0.1),
        ("big".to_owned(), 3.0),
        ("v2".to_owned(), 2.0),
    ];
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(weight_for(&tags(&["v2", "big"]), &w), 3.0);
    assert_eq!(weight_for(&tags(&["canary"]), &w), 0.1);
    assert_eq!(
        weight_for(&tags(&["other"]), &w),
        1.0,
        "no matching tag: 1.0"
    );
    assert_eq!(weight_for(&[], &[]), 1.0);
}
