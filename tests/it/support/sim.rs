//! The reference golden-path service (`pathwatch::sim`), run in-process on 127.0.0.1:0 so a
//! test can flip its fault switches while the real pathwatch binary probes it.

use pathwatch::sim::{Faults, SimOptions, SimState};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "sim-password";
pub const BYPASS_KEY: &str = "sim-bypass-key";

pub struct Sim {
    pub addr: SocketAddr,
    /// Its DNS server (UDP and TCP), which answers `pathwatch::sim::dns::BACKEND`.
    pub dns: SocketAddr,
    /// Its gRPC health service (overall and `pathwatch::sim::grpc::SERVICE`: SERVING).
    pub grpc: SocketAddr,
    pub state: SimState,
    stop: CancellationToken,
}

impl Sim {
    pub fn start(faults: Faults) -> Sim {
        Self::start_with(SimOptions {
            password: PASSWORD.into(),
            bypass_key: Some(BYPASS_KEY.into()),
            event_pause: Duration::from_millis(20),
            heartbeat: Duration::from_millis(200),
            faults,
        })
    }

    pub fn start_with(opts: SimOptions) -> Sim {
        let state = SimState::new(opts);
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, token) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime for the sim");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the sim");
                let dns = pathwatch::sim::dns::start_dns([127, 0, 0, 1].into(), token.clone())
                    .await
                    .expect("start the sim's DNS server");
                let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the sim's gRPC health service");
                let grpc_addr = grpc.local_addr().expect("gRPC address");
                tokio::spawn(pathwatch::sim::serve_grpc(grpc, token.clone()));
                tx.send((listener.local_addr().expect("sim address"), dns, grpc_addr))
                    .expect("send the sim address");
                let _ = pathwatch::sim::serve(listener, s, token).await;
            });
        });
        let (addr, dns, grpc) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("sim started");
        Sim {
            addr,
            dns,
            grpc,
            state,
            stop,
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
