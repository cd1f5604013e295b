mod audit;
mod cli;
mod mcp;
mod restart;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn steward() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
    // The tests decide every variable that matters; nothing leaks in from
    // the machine or a .env file.
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "OLLAMA_HOST",
        "OLLAMA_MODEL",
        "DATABASE_URL",
        "STEWARD_API_KEYS",
        "STEWARD_API_KEY",
        "STEWARD_URL",
        "STEWARD_HOST",
        "API_PORT",
        "STEWARD_DATA_DIR",
        "STEWARD_CONFIG",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ] {
        c.env_remove(var);
    }
    c
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steward-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `steward serve` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, port: u16, envs: &[(&str, &str)]) -> Server {
        let log = dir.join(format!("serve-{port}-{}.log", Instant::now().elapsed().as_nanos()));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = steward();
        cmd.current_dir(dir)
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.join("data"))
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(file);
        let child = cmd.spawn().unwrap();
        let server = Server { child, url: format!("http://127.0.0.1:{port}"), log };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking_get(&format!("{}/health", self.url)) {
                if r == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("steward did not become ready; log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process without letting it shut down cleanly.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// Tiny blocking HTTP for readiness polling, so no runtime is needed.
mod reqwest {
    use std::io::{Read, Write};

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let mut s = std::net::TcpStream::connect(host)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("bad response"))
    }
}
