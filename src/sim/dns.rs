//! The reference service's DNS server, for the demo's `dns` probe: authoritative for
//! [`ZONE`] over UDP and TCP on one port, answering `backend.` + [`ZONE`] (A 127.0.0.1,
//! AAAA ::1) and a TXT at the zone's apex, NXDOMAIN for other names in the zone and
//! REFUSED outside it. Built with hickory-proto's messages; the real-server tests of the
//! probe use unbound, not this.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// The zone the demo's server is authoritative for.
pub(crate) const ZONE: &str = "pathwatch-demo.test.";
/// The name the demo's probe asks for.
pub const BACKEND: &str = "backend.pathwatch-demo.test.";

/// The TTL of every answer.
const TTL: u32 = 60;

/// Binds UDP and TCP on one free port of `ip` and serves both until `shutdown`; returns the
/// address.
///
/// # Errors
/// When no port is free for both.
pub async fn start_dns(ip: IpAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let mut last = None;
    // The UDP port picked may be taken for TCP: try a few.
    for _ in 0..10 {
        let udp = UdpSocket::bind((ip, 0)).await?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => {
                tokio::spawn(serve_udp(udp, shutdown.clone()));
                tokio::spawn(serve_tcp(tcp, shutdown));
                return Ok(addr);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port")))
}

async fn serve_udp(socket: UdpSocket, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, peer)) => {
                    if let Some(reply) = answer(&buf[..n]) {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn serve_tcp(listener: TcpListener, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    tokio::spawn(async move {
                        // One message after another, each after its two-byte length.
                        while let Ok(len) = stream.read_u16().await {
                            let mut buf = vec![0u8; usize::from(len)];
                            if stream.read_exact(&mut buf).await.is_err() {
                                return;
                            }
                            let Some(reply) = answer(&buf) else { return };
                            let Ok(len) = u16::try_from(reply.len()) else { return };
                            let mut framed = len.to_be_bytes().to_vec();
                            framed.extend_from_slice(&reply);
                            if stream.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    });
                }
                // Out of file descriptors and the like: pause rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
        }
    }
}

/// The reply to the query in `bytes`, encoded; `None` for what is not a query.
fn answer(bytes: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(bytes).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.add_queries(query.queries.iter().cloned());
    let Some(q) = query.queries.first().filter(|_| query.queries.len() == 1) else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().ok();
    };
    let zone = Name::from_ascii(ZONE).ok()?;
    let backend = Name::from_ascii(BACKEND).ok()?;
    let name = q.name();
    if !zone.zone_of(name) {
        reply.metadata.response_code = ResponseCode::Refused;
        return reply.to_vec().ok();
    }
    reply.metadata.authoritative = true;
    let data: Vec<RData> = if *name == backend {
        match q.query_type() {
            RecordType::A => vec![RData::A(A::new(127, 0, 0, 1))],
            RecordType::AAAA => vec![RData::AAAA(AAAA::new(0, 0, 0, 0, 0, 0, 0, 1))],
            _ => vec![],
        }
    } else if *name == zone {
        match q.query_type() {
            RecordType::TXT => vec![RData::TXT(TXT::new(vec![
                "pathwatch demo reference service".into(),
            ]))],
            _ => vec![],
        }
    } else {
        reply.metadata.response_code = ResponseCode::NXDomain;
        vec![]
    };
    for d in data {
        reply.add_answer(Record::from_rdata(name.clone(), TTL, d));
    }
    reply.to_vec().ok()
}
