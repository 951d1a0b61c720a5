//! A throwaway `redis-server` on a free loopback port, killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::interop;

/// A running redis-server.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts `redis-server --bind 127.0.0.1 --port N --save "" --appendonly no EXTRA…`, or skips
    /// (fails under `DPWRAP_INTEROP=require`) when redis-server is not installed.
    pub fn start(extra: &[&str]) -> Option<RedisServer> {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        RedisServer::start_with(|_| extra.clone())
    }

    /// Starts a redis-server with TLS only: `--port 0 --tls-port N` and the given certificate,
    /// key and CA files (clients are not asked for certificates).
    pub fn start_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> Option<RedisServer> {
        let (cert, key, ca) = (cert.to_owned(), key.to_owned(), ca.to_owned());
        RedisServer::start_with(move |port| {
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                cert.display().to_string(),
                "--tls-key-file".into(),
                key.display().to_string(),
                "--tls-ca-cert-file".into(),
                ca.display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        })
    }

    /// Starts a redis-server with extra arguments that may depend on the port chosen.
    pub fn start_with(extra: impl Fn(u16) -> Vec<String>) -> Option<RedisServer> {
        if !interop::have("redis-server") {
            interop::skip("redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("dpwrap-redis-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(extra(port))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            let mut server = RedisServer { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = server.child.kill();
        }
        panic!("redis-server did not start");
    }

    /// `redis://127.0.0.1:PORT` plus `tail` (for example `/0?key=ring`).
    pub fn url(&self, tail: &str) -> String {
        format!("redis://127.0.0.1:{}{tail}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
