//! One DNS exchange over our own sockets, phase by phase: a UDP query (`query`), and after a
//! truncated answer the same query over TCP (`connect`, `transfer`); or TCP only (`connect`,
//! `query`). An answer counts only if it carries the query's id and is a response; anything
//! else arriving on the UDP socket is ignored, as a stub resolver does.

use super::DnsTransport;
use crate::probe::{Phase, ProbeError, Reason, Trace, connect_tcp, io_reason};
use hickory_proto::op::{Message, MessageType};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

/// How the answer finally came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Came {
    Udp,
    Tcp,
    /// Truncated over UDP, then whole over TCP.
    UdpThenTcp,
}

impl std::fmt::Display for Came {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Came::Udp => "udp",
            Came::Tcp => "tcp",
            Came::UdpThenTcp => "udp, truncated, then tcp",
        })
    }
}

/// Sends `query` to `server` and returns the answer.
pub(crate) async fn exchange(
    query: &Message,
    server: SocketAddr,
    transport: DnsTransport,
    trace: &Trace,
) -> Result<(Message, Came), ProbeError> {
    let wire = query
        .to_vec()
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("encoding the query: {e}")))?;
    let id = query.metadata.id;
    if transport == DnsTransport::Tcp {
        let answer = tcp(&wire, id, server, Phase::Query, trace).await?;
        return Ok((answer, Came::Tcp));
    }
    let answer = trace.time(Phase::Query, udp(&wire, id, server)).await?;
    if !answer.metadata.truncation {
        return Ok((answer, Came::Udp));
    }
    let answer = tcp(&wire, id, server, Phase::Transfer, trace).await?;
    Ok((answer, Came::UdpThenTcp))
}

fn io_error(what: &str, server: SocketAddr, e: &std::io::Error) -> ProbeError {
    ProbeError::new(io_reason(e), format!("{what} {server}: {e}"))
}

/// One query over UDP: the first datagram from `server` that answers it.
async fn udp(wire: &[u8], id: u16, server: SocketAddr) -> Result<Message, ProbeError> {
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| io_error("binding a UDP socket for", server, &e))?;
    // Connected: the kernel drops datagrams from anyone else, and an ICMP port unreachable
    // comes back as "connection refused".
    socket
        .connect(server)
        .await
        .map_err(|e| io_error("connecting UDP to", server, &e))?;
    socket
        .send(wire)
        .await
        .map_err(|e| io_error("sending to", server, &e))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| io_error("receiving from", server, &e))?;
        match answer_to(&buf[..n], id) {
            Some(answer) => return answer,
            // A late answer to an earlier query, or noise: keep waiting for ours.
            None => continue,
        }
    }
}

/// One query over a fresh TCP connection (`connect`, then `phase`): both messages carry
/// their length in two bytes first (RFC 1035 4.2.2).
async fn tcp(
    wire: &[u8],
    id: u16,
    server: SocketAddr,
    phase: Phase,
    trace: &Trace,
) -> Result<Message, ProbeError> {
    let mut stream = connect_tcp(&[server], trace).await?;
    trace
        .time(phase, async {
            let len = u16::try_from(wire.len())
                .map_err(|_| ProbeError::new(Reason::Protocol, "the query is too long"))?;
            let mut framed = Vec::with_capacity(wire.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(wire);
            stream
                .write_all(&framed)
                .await
                .map_err(|e| io_error("sending to", server, &e))?;
            loop {
                let len = stream
                    .read_u16()
                    .await
                    .map_err(|e| io_error("reading the answer's length from", server, &e))?;
                let mut buf = vec![0u8; usize::from(len)];
                stream
                    .read_exact(&mut buf)
                    .await
                    .map_err(|e| io_error("reading the answer from", server, &e))?;
                if let Some(answer) = answer_to(&buf, id) {
                    return answer;
                }
            }
        })
        .await
}

/// `bytes` decoded if they answer query `id`: `None` when they are about something else,
/// an error when they claim to answer it but do not decode.
fn answer_to(bytes: &[u8], id: u16) -> Option<Result<Message, ProbeError>> {
    // The id is the first two bytes: a message for another query is skipped undecoded.
    if bytes.len() < 2 || u16::from_be_bytes([bytes[0], bytes[1]]) != id {
        return None;
    }
    match Message::from_vec(bytes) {
        Ok(m) if m.metadata.message_type == MessageType::Response => Some(Ok(m)),
        Ok(_) => None,
        // A server may cut a truncated answer anywhere: its header is all that counts then.
        Err(_) if bytes.len() >= 4 && bytes[2] & 0x80 != 0 && bytes[2] & 0x02 != 0 => {
            let mut m = Message::response(id, hickory_proto::op::OpCode::Query);
            m.metadata.truncation = true;
            Some(Ok(m))
        }
        Err(e) => Some(Err(ProbeError::new(
            Reason::Protocol,
            format!("the answer does not decode: {e}"),
        ))),
    }
}
