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
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
    let log = seen.clone();
    let addr = listen(move |client| {
        let (log, want) = (log.clone(), want.clone());
        async move {
            let _ = handle(client, log, want).await;
        }
    });
    Proxy { addr, seen }
}

/// Accepts connections on 127.0.0.1:0 on a runtime thread of its own for the rest of the
/// test process, each handled in a task of its own (also the gateway's).
pub fn listen<H, F>(handle: H) -> SocketAddr
where
    H: Fn(TcpStream) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for a listener");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a listener");
            tx.send(listener.local_addr().expect("address"))
                .expect("send address");
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(handle(client));
            }
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("listener started")
}

/// A request head, read byte by byte so that nothing past it is consumed (it belongs to the
/// tunnel or the backend): its bytes and its text, or `None` when the client went away or
/// sent more than 16 KiB.
pub async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, String)>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 16 << 10 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    Ok(Some((head, text)))
}

/// A header's value in a head's text, its name matched case-insensitively.
pub fn header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

async fn handle(
    mut client: TcpStream,
    log: Arc<Mutex<Vec<String>>>,
    want: Option<String>,
) -> std::io::Result<()> {
    let Some((head, text)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let line = text.lines().next().unwrap_or_default().to_string();
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(line.clone());
    let auth = header(&text, "proxy-authorization");
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
