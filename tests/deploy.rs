//! The container deployment (`deploy/docker-compose.yml`) cannot run on
//! these machines (no container engine), so its wiring is checked here:
//! the compose file parses as YAML, its services and mounts point at files
//! that exist, `hello` is registered in Consul with a port it listens on,
//! and Strait's config in it is valid, listens on 0.0.0.0:4140 with admin
//! on loopback, and names services the way Consul's registration does.
//! tests/consul.rs serves traffic through that same Strait config.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use saphyr::{LoadableYamlNode, YamlOwned as Yaml};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = Yaml::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

fn get<'a>(y: &'a Yaml, key: &str) -> &'a Yaml {
    y.as_mapping_get(key)
        .unwrap_or_else(|| panic!("missing key {key:?} in {y:?}"))
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("not a list: {y:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn compose_wires_consul_strait_and_a_registered_hello() {
    let compose = load(&deploy().join("docker-compose.yml"));
    let services = get(&compose, "services");
    for name in ["consul", "strait", "hello"] {
        get(services, name);
    }

    // Consul loads the service definitions from ./consul.
    let consul = get(services, "consul");
    let volumes = strs(get(consul, "volumes"));
    let (host_dir, container_dir) = volumes[0].split_once(':').unwrap();
    assert!(
        strs(get(consul, "command")).contains(&format!(
            "-config-dir={}",
            container_dir.trim_end_matches(":ro")
        )),
        "consul reads the mounted definitions"
    );
    let defs = deploy().join(host_dir);
    let hello: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(defs.join("hello.json")).unwrap())
            .expect("hello.json is JSON");
    let svc = &hello["service"];
    assert_eq!(svc["name"], "hello", "the hello service is registered");
    assert_eq!(svc["address"], "hello", "at the compose service's name");
    let port = svc["port"].as_u64().unwrap();
    assert!(
        svc["check"]["http"]
            .as_str()
            .unwrap()
            .contains(&format!(":{port}/"))
    );

    // The hello container listens on the registered port.
    let hello_svc = get(services, "hello");
    assert!(strs(get(hello_svc, "expose")).contains(&port.to_string()));
    assert!(
        strs(get(hello_svc, "command"))
            .join(" ")
            .contains(&format!("http.server {port}")),
        "hello serves on port {port}"
    );

    // Strait: built from the repo's Dockerfile, with a config that exists.
    let strait = get(services, "strait");
    let build = get(strait, "build");
    let context = deploy().join(get(build, "context").as_str().unwrap());
    assert!(
        context
            .join(get(build, "dockerfile").as_str().unwrap())
            .is_file()
    );
    assert!(context.join("Cargo.toml").is_file(), "context is the repo");
    let mount = strs(get(strait, "volumes"))[0].clone();
    let mut parts = mount.split(':');
    let (host_cfg, container_cfg) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        strs(get(strait, "command")).contains(&container_cfg.to_owned()),
        "strait runs the mounted config"
    );
    assert_eq!(strs(get(strait, "ports")), ["127.0.0.1:4140:4140"]);

    let cfg_path = deploy().join(host_cfg);
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cfg = load(&cfg_path);
    let namer = &get(&cfg, "namers").as_vec().unwrap()[0];
    assert_eq!(get(namer, "kind").as_str(), Some("io.l5d.consul"));
    assert_eq!(
        get(namer, "host").as_str(),
        Some("consul"),
        "the compose service name"
    );
    assert_eq!(
        get(namer, "includeTag").as_bool(),
        Some(false),
        "the dtab below has no tag segment"
    );
    let router = &get(&cfg, "routers").as_vec().unwrap()[0];
    assert!(
        get(router, "dtab")
            .as_str()
            .unwrap()
            .contains("/svc => /#/io.l5d.consul/dc1;")
    );
    let server = &get(router, "servers").as_vec().unwrap()[0];
    assert_eq!(get(server, "ip").as_str(), Some("0.0.0.0"));
    assert_eq!(get(server, "port").as_integer(), Some(4140));
    assert_eq!(
        get(get(&cfg, "admin"), "ip").as_str(),
        Some("127.0.0.1"),
        "admin stays on loopback"
    );
}

#[test]
fn dockerfile_builds_a_static_binary_into_an_empty_image() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    assert!(
        text.contains("--target x86_64-unknown-linux-musl"),
        "{text}"
    );
    assert!(text.contains("FROM scratch"), "{text}");
    assert!(text.contains("ENTRYPOINT [\"/strait\"]"), "{text}");
    let ignore = std::fs::read_to_string(deploy().join("../.dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}
