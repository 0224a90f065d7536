//! The reference service's Redis (Memorystore, on a private address behind the VPC connector):
//! a tiny RESP server on its own listener that answers what a health check sends. `AUTH` with
//! the sim's password (also in the Redis 6 form with the `default` user), `PING` (`+PONG`),
//! `SELECT` of databases 0-15 and `QUIT`; other commands get Redis' own errors. `PING` answers
//! `-LOADING` while the backend is starting and under the `redis_loading` fault, as Redis does
//! while it loads its dataset after a restart.
//!
//! A VPC connector that is not READY carries no traffic: the listener is closed (connections
//! are refused) and open sessions end until the connector is READY again, then the same address
//! is bound anew. A broken connector makes connects hang rather than be refused, but a process
//! cannot make the kernel drop SYNs, and a refusal fails the same checks.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::SimState;

/// Longest command line or bulk header read; a health check's are a few bytes.
const MAX_LINE: u64 = 1024;
/// Longest argument read (a password, a PING message).
const MAX_BULK: usize = 4096;
/// Most arguments in one command.
const MAX_ARGS: usize = 16;
/// Pause between attempts to bind the address again after the network came back.
const REBIND_PAUSE: Duration = Duration::from_millis(100);
/// Redis' 16 logical databases.
const DATABASES: u32 = 16;

/// Serves RESP on `listener` until `shutdown` is cancelled.
///
/// # Errors
/// Only when the listener's own address cannot be read.
pub async fn serve_redis(
    listener: TcpListener,
    state: SimState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let mut listener = Some(listener);
    loop {
        // Registered before the faults are read, so a change in between still wakes us.
        let changed = state.inner.faults_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let up = SimState::private_network_up(&state.faults());
        if listener.is_some() && !up {
            tracing::debug!(%addr, "sim redis: the VPC connector is down, refusing connections");
            listener = None;
        } else if listener.is_none() && up {
            match rebind(addr, &shutdown).await {
                Some(l) => listener = Some(l),
                None => return Ok(()),
            }
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = &mut changed => {}
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((socket, _)) => {
                    tokio::spawn(session(socket, state.clone(), shutdown.clone()));
                }
                // Out of file descriptors and the like: pause rather than spin.
                Err(e) => {
                    tracing::debug!(error = %e, "sim redis: accept failed");
                    tokio::time::sleep(REBIND_PAUSE).await;
                }
            },
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds `addr` again, retrying while it is briefly taken; `None` on shutdown.
async fn rebind(addr: SocketAddr, shutdown: &CancellationToken) -> Option<TcpListener> {
    for attempt in 0u64.. {
        match TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::debug!(%addr, "sim redis: the VPC connector is back, listening");
                return Some(l);
            }
            // Once is news; every 100 ms after that would flood the log.
            Err(e) if attempt == 0 => {
                tracing::warn!(%addr, error = %e, "sim redis: cannot listen again yet, retrying");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(REBIND_PAUSE) => {}
        }
    }
    None
}

/// One client connection; ends on QUIT, a protocol error, shutdown or a connector outage.
async fn session(socket: TcpStream, state: SimState, shutdown: CancellationToken) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let mut authed = false;
    loop {
        let command = tokio::select! {
            () = shutdown.cancelled() => return,
            c = read_command(&mut read) => c,
        };
        let Some(args) = command else { return };
        let faults = state.faults();
        if !SimState::private_network_up(&faults) {
            return;
        }
        let (reply, quit) = answer(&state, &faults, &mut authed, &args);
        if write_all(&mut write, reply.as_bytes()).await.is_err() || quit {
            return;
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

/// The reply to one command, and whether to close the connection after it.
fn answer(
    state: &SimState,
    faults: &super::Faults,
    authed: &mut bool,
    args: &[Vec<u8>],
) -> (String, bool) {
    let Some(name) = args.first() else {
        return (String::new(), false);
    };
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let arg = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
    let reply = match (name.as_str(), args.len()) {
        ("QUIT", _) => return ("+OK\r\n".into(), true),
        ("AUTH", 2 | 3) => {
            let (user, password) = match args.len() {
                2 => (None, arg(1)),
                _ => (arg(1), arg(2)),
            };
            let user_ok = user.as_deref().is_none_or(|u| u == "default");
            if user_ok && password.as_deref() == Some(state.inner.password.as_str()) {
                *authed = true;
                "+OK\r\n".into()
            } else {
                "-WRONGPASS invalid username-password pair or user is disabled.\r\n".into()
            }
        }
        ("AUTH", _) => "-ERR wrong number of arguments for 'auth' command\r\n".into(),
        _ if !*authed => "-NOAUTH Authentication required.\r\n".into(),
        ("SELECT", 2) => match arg(1).and_then(|n| n.parse::<u32>().ok()) {
            Some(n) if n < DATABASES => "+OK\r\n".into(),
            Some(_) => "-ERR DB index is out of range\r\n".into(),
            None => "-ERR value is not an integer or out of range\r\n".into(),
        },
        ("PING", 1 | 2) if faults.redis_loading || state.starting(faults) => {
            "-LOADING Redis is loading the dataset in memory\r\n".into()
        }
        ("PING", 1) => "+PONG\r\n".into(),
        ("PING", 2) => {
            let msg = &args[1];
            format!("${}\r\n{}\r\n", msg.len(), String::from_utf8_lossy(msg))
        }
        (cmd @ ("SELECT" | "PING"), _) => format!(
            "-ERR wrong number of arguments for '{}' command\r\n",
            cmd.to_ascii_lowercase()
        ),
        _ => {
            let shown: String = name.chars().take(40).collect();
            format!("-ERR unknown command '{shown}', with args beginning with: \r\n")
        }
    };
    (reply, false)
}

/// The next command: a RESP array of bulk strings, or an inline command (what `telnet`
/// sends). `None` at the end of the stream or on anything else.
async fn read_command<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Option<Vec<Vec<u8>>> {
    let line = read_line(r).await?;
    let Some(count) = line.strip_prefix('*') else {
        let args: Vec<Vec<u8>> = line
            .split_whitespace()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        return (args.len() <= MAX_ARGS).then_some(args);
    };
    let count: usize = count.parse().ok().filter(|n| *n <= MAX_ARGS)?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let header = read_line(r).await?;
        let len: usize = header
            .strip_prefix('$')?
            .parse()
            .ok()
            .filter(|n| *n <= MAX_BULK)?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).await.ok()?;
        if !buf.ends_with(b"\r\n") {
            return None;
        }
        buf.truncate(len);
        args.push(buf);
    }
    Some(args)
}

/// One CRLF-terminated line without its terminator, at most `MAX_LINE` bytes.
async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Option<String> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if n == 0 || !buf.ends_with(b"\n") {
        return None;
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).ok()
}
