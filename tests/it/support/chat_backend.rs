//! The independent chat backend (tests/backends/chat_aiohttp.py, Python aiohttp) as a child
//! process on 127.0.0.1 with a port of its own choosing; variants are its command-line flags.
//! A missing python3 or aiohttp fails the test loudly (`.ci/install` installs aiohttp).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PASSWORD: &str = "independent-pw";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/backends/chat_aiohttp.py"
);

pub struct ChatBackend {
    child: Child,
    pub addr: SocketAddr,
}

impl ChatBackend {
    /// Starts the backend with `flags` (e.g. `["--threads", "echo"]`).
    pub fn start(flags: &[&str]) -> ChatBackend {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 for the independent backend: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        // The first line is `listening 127.0.0.1:PORT`; anything else means it did not start.
        let _ = BufReader::new(stdout).read_line(&mut line);
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "the independent backend did not start (python3 with aiohttp is needed: \
                 `python3 -m pip install aiohttp`, see .ci/install); its stderr:\n{err}"
            );
        };
        let addr = addr.parse().expect("the backend's address");
        // Its stderr (aiohttp's access log) is drained so that it never blocks on a full pipe.
        if let Some(mut e) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut e, &mut std::io::sink()));
        }
        ChatBackend { child, addr }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Switches variants at run time (`PUT /admin/variant`), e.g. `{"fault":"broadcast"}`.
    pub fn set_variant(&self, json: &str) {
        let (status, body) = self.request("PUT", "/admin/variant", json);
        assert_eq!(status, 200, "PUT /admin/variant {json}: {body}");
    }

    /// The login requests this backend saw (`GET /admin/log`).
    pub fn log(&self) -> serde_json::Value {
        let (status, body) = self.request("GET", "/admin/log", "");
        assert_eq!(status, 200, "GET /admin/log: {body}");
        serde_json::from_str(&body).expect("the log is JSON")
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).expect("connect to the backend");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("send the request");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read the answer");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }
}

impl Drop for ChatBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
