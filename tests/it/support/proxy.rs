//! A minimal HTTP proxy on 127.0.0.1:0: `CONNECT host:port` opens a tunnel, an absolute-form
//! request is passed on to the host it names. With credentials set it answers 407 to a
//! request without the matching `Proxy-Authorization: Basic`. Every request line it gets is
//! kept, and whether it carried credentials.

use base64::Engine as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Request lines received (`CONNECT localhost:443 HTTP/1.1`, `GET http://... HTTP/1.1`).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Starts the proxy; `credentials` (`user:password`) makes it demand them.
pub fn start(credentials: Option<&str>) -> Proxy {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let want = credentials.map(|c| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(c)
        )
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let log = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for the proxy");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the proxy");
            tx.send(listener.local_addr().expect("address"))
                .expect("send address");
            while let Ok((client, _)) = listener.accept().await {
                let (log, want) = (log.clone(), want.clone());
                tokio::spawn(async move {
                    let _ = handle(client, log, want).await;
                });
            }
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("proxy started");
    Proxy { addr, seen }
}

async fn handle(
    mut client: TcpStream,
    log: Arc<Mutex<Vec<String>>>,
    want: Option<String>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing past the head may be consumed (it belongs to the tunnel).
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 16 << 10 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let line = text.lines().next().unwrap_or_default().to_string();
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(line.clone());
    let auth = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    if want.is_some() && auth != want {
        client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if method == "CONNECT" {
        let mut upstream = TcpStream::connect(target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    } else {
        let url = url::Url::parse(target).map_err(std::io::Error::other)?;
        let authority = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(80)
        );
        let mut upstream = TcpStream::connect(authority).await?;
        upstream.write_all(&head).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    }
    Ok(())
}
