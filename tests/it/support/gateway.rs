//! An authenticating gateway on 127.0.0.1:0 in front of a backend, as Cloud Run, IAP or an
//! API gateway stand in front of a service: it reads each connection's first request head,
//! answers 401 when its `Authorization` is not one the gate accepts, and otherwise passes
//! the connection on to the backend byte for byte (a login's POST as well as a WebSocket
//! upgrade). Every first request line it gets is kept with its `Authorization`.

use super::proxy::{header, listen, read_head};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Whether an `Authorization` value (or its absence) may pass.
pub type Gate = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// (request line, Authorization) of each connection's first request.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct Gateway {
    pub addr: SocketAddr,
    seen: Seen,
}

impl Gateway {
    /// (request line, Authorization) of every connection's first request.
    pub fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// Starts a gateway to `backend` that lets through what `gate` accepts.
pub fn start(backend: SocketAddr, gate: Gate) -> Gateway {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let addr = listen(move |client| {
        let (log, gate) = (log.clone(), gate.clone());
        async move {
            let _ = handle(client, backend, log, gate).await;
        }
    });
    Gateway { addr, seen }
}

async fn handle(
    mut client: TcpStream,
    backend: SocketAddr,
    log: Seen,
    gate: Gate,
) -> std::io::Result<()> {
    // What follows the head (a body, WebSocket frames) is the backend's.
    let Some((head, text)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let line = text.lines().next().unwrap_or_default().to_string();
    let auth = header(&text, "authorization");
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((line, auth.clone()));
    if !gate(auth.as_deref()) {
        client
            .write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(backend).await?;
    upstream.write_all(&head).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
