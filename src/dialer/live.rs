//! Settings that SIGHUP may change while tasks run. A [`Live`] is read at
//! each use, so a reloaded `[dialer]` / `[compliance]` section takes effect
//! within the runner's next loop turn without restarting tasks or
//! dropping connections.

use std::sync::Arc;

use tokio::sync::watch;

/// A value the daemon may replace at run time (a `watch` receiver; fixed
/// when built with `From`).
#[derive(Debug, Clone)]
pub struct Live<T> {
    rx: watch::Receiver<Arc<T>>,
}

/// The daemon's side of a [`Live`]: publishes a reloaded value.
#[derive(Debug)]
pub struct LiveSender<T> {
    tx: watch::Sender<Arc<T>>,
}

impl<T> Live<T> {
    /// A live value and the sender that replaces it.
    pub fn channel(v: T) -> (LiveSender<T>, Live<T>) {
        let (tx, rx) = watch::channel(Arc::new(v));
        (LiveSender { tx }, Live { rx })
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        self.rx.borrow().clone()
    }
}

impl<T> LiveSender<T> {
    pub fn set(&self, v: T) {
        self.tx.send_replace(Arc::new(v));
    }

    pub fn get(&self) -> Arc<T> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> Live<T> {
        Live { rx: self.tx.subscribe() }
    }
}

/// A value that never changes (demo, tests, benches).
impl<T> From<T> for Live<T> {
    fn from(v: T) -> Live<T> {
        Live::channel(v).1
    }
}

impl<T> From<Arc<T>> for Live<T> {
    fn from(v: Arc<T>) -> Live<T> {
        let (_, rx) = watch::channel(v);
        Live { rx }
    }
}
