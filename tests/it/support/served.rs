//! An axum Router served on 127.0.0.1:0 from its own runtime thread, for the tests' fakes
//! and receivers; it stops when dropped.

use axum::Router;
use std::net::SocketAddr;
use std::time::Duration;

/// An HTTP fake on its own runtime thread; it stops when dropped.
pub struct Served {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub fn serve(router: Router) -> Served {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for a fake");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a fake");
            addr_tx
                .send(listener.local_addr().expect("fake address"))
                .expect("send the address");
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("fake started");
    Served {
        addr,
        _stop: stop_tx,
    }
}
