//! A real nginx (Debian's nginx-light; scripts/test installs it) as a
//! plaintext HTTP/2 backend: h2c with prior knowledge, which is how
//! Linkerd's h2 client (and so Strait's) speaks to plaintext backends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx serving h2c (`listen 127.0.0.1:<port> http2`) on loopback.
/// Stopped (SIGTERM, which also stops its worker) on drop.
pub struct Nginx {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    prefix: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// An h2c nginx whose `location /` block body is `location` (e.g.
    /// `return 200 "hello over $server_protocol\n";` or a `proxy_pass`),
    /// with `http_extra` added to its `http` block (e.g. an `upstream`).
    pub fn h2c(location: &str, http_extra: &str) -> Nginx {
        let nginx = ["nginx", "/usr/sbin/nginx"]
            .into_iter()
            .find(|n| Command::new(n).arg("-v").output().is_ok())
            .expect("nginx must be installed (Debian's nginx-light; scripts/test installs it)");
        let prefix = tempfile::tempdir().unwrap();
        // nginx cannot listen on port 0: a port free now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let conf = format!(
            "{user}worker_processes 1;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  {http_extra}\n  server {{\n    \
             listen 127.0.0.1:{port} http2;\n    location / {{ {location} }}\n  }}\n}}\n",
            user = if root { "user root;\n" } else { "" },
        );
        let conf_path = prefix.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(prefix.path())
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;",
                dir = prefix.path().display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut n = Nginx {
            child,
            addr,
            prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status}): {}", n.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {addr}: {}",
                n.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    /// Its error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default()
    }

    /// `host port` for an `io.l5d.fs` file.
    pub fn fs_line(&self) -> String {
        format!("{} {}", self.addr.ip(), self.addr.port())
    }
}
