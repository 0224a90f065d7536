//! A task handle that aborts its task when dropped, so a cancelled probe leaves nothing behind.

use tokio::task::JoinHandle;

pub(crate) struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task; the result is dropped (the task's own output is not needed).
    pub(crate) async fn wait(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
