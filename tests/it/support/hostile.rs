//! Hostile and recording peers for the security tests: an HTTP server that records every
//! request head it receives and answers from a script, and a fake Postgres server that asks
//! for a cleartext password and records whatever a client sends it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received: the request line, the raw header lines and the body (as long
/// as its Content-Length says).
#[derive(Clone, Debug)]
pub struct Seen {
    pub line: String,
    pub head: String,
    pub body: String,
}

impl Seen {
    /// The request's method.
    pub fn method(&self) -> &str {
        self.line.split_whitespace().next().unwrap_or_default()
    }

    /// The request's path.
    pub fn path(&self) -> &str {
        self.line.split_whitespace().nth(1).unwrap_or_default()
    }

    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// An HTTP/1.x server on `ip:0` that records each request head and answers with what
/// `answer(path)` returns (a whole raw response), closing the connection after it.
pub struct RecordingHttp {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingHttp {
    pub fn start(
        ip: &str,
        answer: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> RecordingHttp {
        let listener = TcpListener::bind((ip, 0)).expect("bind a recording server");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, answer) = (s.clone(), answer.clone());
                std::thread::spawn(move || serve_one(conn, &s, &*answer));
            }
        });
        RecordingHttp { addr, seen }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn serve_one(mut conn: TcpStream, seen: &Mutex<Vec<Seen>>, answer: &dyn Fn(&str) -> String) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let (line, head) = text.split_once("\r\n").unwrap_or((&text, ""));
    let mut seen_one = Seen {
        line: line.to_string(),
        head: head.to_string(),
        body: String::new(),
    };
    let length: usize = seen_one
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    seen_one.body = String::from_utf8_lossy(&body).to_string();
    let path = seen_one.path().to_string();
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(seen_one);
    let _ = conn.write_all(answer(&path).as_bytes());
}

/// A raw redirect answer.
pub fn redirect(status: u16, location: &str) -> String {
    format!(
        "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// A raw 200 answer.
pub fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A fake Postgres server: refuses SSL, asks for a cleartext password, records the password
/// message's content, then fails the login. What a hostile `/probe?target=` listener sees.
pub struct PasswordTrap {
    pub port: u16,
    passwords: Arc<Mutex<Vec<String>>>,
    startups: Arc<Mutex<usize>>,
}

impl PasswordTrap {
    pub fn start() -> PasswordTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a password trap");
        let port = listener.local_addr().expect("address").port();
        let passwords = Arc::new(Mutex::new(Vec::new()));
        let startups = Arc::new(Mutex::new(0));
        let (p, s) = (passwords.clone(), startups.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (p, s) = (p.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = trap_one(conn, &p, &s);
                });
            }
        });
        PasswordTrap {
            port,
            passwords,
            startups,
        }
    }

    /// The passwords clients sent, in order.
    pub fn passwords(&self) -> Vec<String> {
        self.passwords
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many startup messages arrived (proves a client did connect).
    pub fn startups(&self) -> usize {
        *self
            .startups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn read_exact(conn: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    conn.read_exact(&mut b)?;
    Ok(b)
}

fn trap_one(
    mut conn: TcpStream,
    passwords: &Mutex<Vec<String>>,
    startups: &Mutex<usize>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    loop {
        // Untyped startup-phase message: length (4 bytes, itself included), then a code.
        let len = u32::from_be_bytes(read_exact(&mut conn, 4)?.try_into().unwrap_or([0; 4]));
        let body = read_exact(&mut conn, (len as usize).saturating_sub(4).min(1 << 16))?;
        let code = u32::from_be_bytes(body[..4].try_into().unwrap_or([0; 4]));
        if code == 80877103 {
            // SSLRequest: no TLS here.
            conn.write_all(b"N")?;
            continue;
        }
        *startups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        break;
    }
    // AuthenticationCleartextPassword.
    conn.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])?;
    let tag = read_exact(&mut conn, 1)?;
    if tag[0] == b'p' {
        let len = u32::from_be_bytes(read_exact(&mut conn, 4)?.try_into().unwrap_or([0; 4]));
        let body = read_exact(&mut conn, (len as usize).saturating_sub(4).min(1 << 16))?;
        let pw = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).to_string();
        passwords
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(pw);
    }
    // ErrorResponse: 28P01 invalid_password.
    let fields = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0";
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(fields);
    conn.write_all(&msg)?;
    Ok(())
}
