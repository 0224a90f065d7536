//! Tests of redis.rs.

use super::*;

async fn replies(bytes: &[u8]) -> Vec<Result<Reply, Reason>> {
    // Large enough that the whole input fits before anything reads it.
    let (mut client, server) = tokio::io::duplex(bytes.len().max(1));
    client.write_all(bytes).await.unwrap();
    drop(client);
    let mut conn = Conn(BufReader::new(server));
    let mut out = Vec::new();
    loop {
        match conn.reply().await {
            Ok(r) => out.push(Ok(r)),
            Err(e) => {
                out.push(Err(e.reason));
                return out;
            }
        }
    }
}

#[tokio::test]
async fn reads_each_reply_type_then_the_close() {
    let got = replies(b"+PONG\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n").await;
    assert_eq!(
        got,
        vec![
            Ok(Reply::Simple("PONG".into())),
            Ok(Reply::Error("ERR bad".into())),
            Ok(Reply::Integer(42)),
            Ok(Reply::Bulk(Some(b"abc".to_vec()))),
            Ok(Reply::Bulk(None)),
            Ok(Reply::Array(2)),
            Err(Reason::Reset),
        ]
    );
}

#[tokio::test]
async fn something_else_is_protocol() {
    assert_eq!(
        replies(b"HTTP/1.1 400 Bad Request\r\n").await,
        vec![Err(Reason::Protocol)]
    );
    assert_eq!(replies(b"+PONG").await, vec![Err(Reason::Protocol)]);
    let long = vec![b'+'; 10_000];
    assert_eq!(replies(&long).await, vec![Err(Reason::Protocol)]);
}

#[tokio::test]
async fn commands_are_arrays_of_bulk_strings() {
    let (client, mut server) = tokio::io::duplex(1024);
    let mut conn = Conn(BufReader::new(client));
    conn.send(&[b"AUTH", b"user", b"p w"]).await.unwrap();
    drop(conn);
    let mut sent = Vec::new();
    server.read_to_end(&mut sent).await.unwrap();
    assert_eq!(sent, b"*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$3\r\np w\r\n");
}

#[test]
fn error_codes_map_to_reasons() {
    for (msg, reason) in [
        (
            "WRONGPASS invalid username-password pair or user is disabled.",
            Reason::Auth,
        ),
        ("NOAUTH Authentication required.", Reason::Auth),
        ("ERR invalid password", Reason::Auth),
        (
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            Reason::Auth,
        ),
        (
            "LOADING Redis is loading the dataset in memory",
            Reason::Unavailable,
        ),
        (
            "ERR max number of clients reached",
            Reason::TooManyConnections,
        ),
        ("ERR DB index is out of range", Reason::DatabaseMissing),
        (
            "NOPERM this user has no permissions to run the 'ping' command",
            Reason::Forbidden,
        ),
        ("ERR unknown command 'PING'", Reason::Protocol),
    ] {
        assert_eq!(error_reason(msg), reason, "{msg}");
    }
}

#[test]
fn redaction_hides_an_echoed_password() {
    let e = ProbeError::new(Reason::Protocol, "AUTH answered +s3cret");
    let e = redact(e, &Secret::new("s3cret"));
    assert_eq!(e.detail, "AUTH answered +<redacted>");
}
