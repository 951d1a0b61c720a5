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
                .args(extra)
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
