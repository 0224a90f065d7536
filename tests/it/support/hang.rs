//! A TCP server that accepts connections and never says a word: the shape of a half-dead
//! database behind a load balancer or a broken VPC path.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct SilentServer {
    pub port: u16,
    /// Accepted connections, held open until the server is dropped.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a silent listener");
        let port = listener
            .local_addr()
            .expect("silent listener address")
            .port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let h = held.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                h.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(conn);
            }
        });
        SilentServer { port, held }
    }

    pub fn connections(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// A port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind to find a free port");
    l.local_addr().expect("address").port()
}
