//! The exporter of `pathwatch serve`, with its probes read from several config files: what
//! `bench/schedule_at_scale.py` runs past 25,000 probes. One config file holds at most about
//! 27,000 probes (the YAML loader stops at 250,000 nodes, and a tcp probe is 9), so 100,000
//! probes in one process need four files; everything else (runtime, scheduler, state,
//! metrics, HTTP) is `pathwatch::app::serve` as `serve` runs it. Not a supported way to run
//! pathwatch: README, "Capacity and sharding", says how to split probes over replicas.
//!
//! ```sh
//! cargo build --release --example many_probes
//! target/release/examples/many_probes 127.0.0.1:9778 a.yaml b.yaml c.yaml d.yaml
//! ```

use pathwatch::config::{self, Loaded};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: many_probes LISTEN CONFIG...";

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().ok_or(USAGE)?;
    let files: Vec<String> = args.collect();
    if files.is_empty() {
        return Err(USAGE.into());
    }
    let mut merged: Option<Loaded> = None;
    for file in &files {
        let loaded = config::load(std::path::Path::new(file)).map_err(|e| e.to_string())?;
        if let Some(e) = loaded.errors.first() {
            return Err(e.to_string());
        }
        match &mut merged {
            None => merged = Some(loaded),
            Some(m) => m.config.probes.extend(loaded.config.probes),
        }
    }
    let loaded = merged.ok_or(USAGE)?;
    let runtime = pathwatch::app::runtime().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let token = CancellationToken::new();
        let on_signal = token.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                term.recv().await;
                on_signal.cancel();
            }
        });
        let options = pathwatch::app::Options {
            source: files.join(","),
            ..Default::default()
        };
        pathwatch::app::serve(loaded, listener, token, options)
            .await
            .map_err(|e| e.to_string())
    })
}
