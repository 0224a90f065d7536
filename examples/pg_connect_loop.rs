//! The physical baseline of the `postgres` probe: a bare tokio-postgres loop that connects
//! (TCP, startup, authentication), runs `SELECT 1` and closes, N times, and prints each
//! iteration's wall time around connect + query in microseconds, one per line. NoTls, so
//! compare it with probes using `sslmode: disable`. An optional PAUSE_MS sleeps between
//! iterations (outside the timing), to pace the loop like a prober's runs: back to back, a
//! connect competes with the previous backend's exit. Used by `bench/pg_baseline.py`.
//!
//! `serve CONNSTR` instead answers each `GET /run` on 127.0.0.1 (port printed on stdout)
//! with one connect + `SELECT 1`, timed the same way, in microseconds; the close runs on a
//! task of its own after the answer, as in pathwatch. Driven by the same HTTP client and
//! pacing as pathwatch's `/probe`, it is the like-for-like baseline: both processes wake for
//! a request, run the session and answer, so only pathwatch's own work differs.
//!
//! ```sh
//! cargo build --release --example pg_connect_loop
//! target/release/examples/pg_connect_loop "host=127.0.0.1 port=5432 user=postgres dbname=postgres" 200
//! target/release/examples/pg_connect_loop 127.0.0.1 5432 postgres postgres 200 1.5
//! ```

use std::time::{Duration, Instant};

const USAGE: &str = "usage: pg_connect_loop CONNSTR N [PAUSE_MS] | pg_connect_loop HOST PORT USER DBNAME N [PAUSE_MS] | pg_connect_loop serve CONNSTR";

/// An error `main` returns: shown as its plain text (not Debug-quoted) on stderr.
struct Failure(String);

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, conn] = args.as_slice()
        && mode == "serve"
    {
        return serve(conn).await;
    }
    let (config, n, pause) = match args.as_slice() {
        [conn, n, pause @ ..] if pause.len() <= 1 => {
            (conn.parse::<tokio_postgres::Config>(), n, pause.first())
        }
        [host, port, user, dbname, n, pause @ ..] if pause.len() <= 1 => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("bad port {port:?}\n{USAGE}"))?;
            let mut c = tokio_postgres::Config::new();
            c.host(host).port(port).user(user).dbname(dbname);
            (Ok(c), n, pause.first())
        }
        _ => return Err(Failure(USAGE.into())),
    };
    let mut config = config.map_err(|e| format!("bad connection string: {e}\n{USAGE}"))?;
    config.application_name("pg_connect_loop");
    let n: u32 = n
        .parse()
        .map_err(|_| format!("bad iteration count {n:?}\n{USAGE}"))?;
    let pause = match pause {
        None => Duration::ZERO,
        Some(p) => p
            .parse::<f64>()
            .ok()
            .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
            .ok_or_else(|| format!("bad pause {p:?} (milliseconds)\n{USAGE}"))?,
    };
    for i in 0..n {
        let (took, close) = session(&config)
            .await
            .map_err(|e| format!("iteration {i}: {e}"))?;
        close.await;
        println!("{}", took.as_micros());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}

/// `serve` mode: one timed session per `GET /run`, answered with its microseconds.
async fn serve(conn: &str) -> Result<(), Failure> {
    let mut config: tokio_postgres::Config = conn
        .parse()
        .map_err(|e| format!("bad connection string: {e}\n{USAGE}"))?;
    config.application_name("pg_connect_loop");
    let config = std::sync::Arc::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?
        .port();
    println!("{port}");
    let app = axum::Router::new().route(
        "/run",
        axum::routing::get(move || {
            let config = config.clone();
            async move {
                match session(&config).await {
                    Ok((took, close)) => {
                        tokio::spawn(close);
                        Ok(took.as_micros().to_string())
                    }
                    Err(e) => Err((axum::http::StatusCode::INTERNAL_SERVER_ERROR, e)),
                }
            }
        }),
    );
    axum::serve(listener, app)
        .await
        .map_err(|e| Failure(format!("serve: {e}")))
}

/// One timed connect + `SELECT 1`: its duration, and the close (Terminate, then the
/// connection's end) to run after the timing.
async fn session(
    config: &tokio_postgres::Config,
) -> Result<(Duration, impl Future<Output = ()> + use<>), String> {
    let start = Instant::now();
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect: {}", chain(&e)))?;
    let driver = tokio::spawn(connection);
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| format!("SELECT 1: {}", chain(&e)))?;
    let took = start.elapsed();
    Ok((took, async move {
        // Dropping the client sends Terminate; the driver then ends.
        drop(client);
        let _ = driver.await;
    }))
}

/// The error with its sources ("error connecting to server: Connection refused ...").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
