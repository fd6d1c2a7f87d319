//! The adapter's private async runtime: one thread driving a single-threaded `tokio` runtime.

use std::future::Future;
use std::thread::{self, JoinHandle, ThreadId};

use super::super::CoordError;

/// Owns the runtime thread; dropping it stops the runtime (cancelling what still runs there)
/// and joins the thread.
pub(crate) struct RuntimeHost {
    handle: tokio::runtime::Handle,
    /// Dropped (or sent to) to stop the runtime.
    stop: Option<futures::channel::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

impl RuntimeHost {
    /// Starts the thread.
    ///
    /// # Errors
    /// `BadArguments` if the operating system refuses a thread or the runtime cannot start.
    pub(crate) fn start() -> Result<Self, CoordError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|_| CoordError::BadArguments {
                reason: "the zookeeper adapter's runtime cannot start",
            })?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("logbus-zookeeper".into())
            .spawn(move || {
                // Whether stopped by a send or by the sender's drop, the runtime ends here.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|_| CoordError::BadArguments {
                reason: "the zookeeper adapter's thread cannot start",
            })?;
        let thread_id = thread.thread().id();
        Ok(RuntimeHost {
            handle,
            stop: Some(stop),
            thread: Some(thread),
            thread_id,
        })
    }

    /// Runs `future` on the runtime and blocks the calling thread until it is done.
    ///
    /// # Errors
    /// `ConnectionLoss` if the runtime stopped before the future finished.
    ///
    /// # Panics
    /// If called from the runtime's own thread (a bug: it would wait for itself).
    pub(crate) fn run<T, F>(&self, future: F) -> Result<T, CoordError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        assert_ne!(
            thread::current().id(),
            self.thread_id,
            "blocking on the zookeeper runtime from its own thread"
        );
        let task = self.handle.spawn(future);
        futures::executor::block_on(task).map_err(|_| CoordError::ConnectionLoss)
    }

    /// Starts `future` on the runtime without waiting for it.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(future));
    }
}

impl Drop for RuntimeHost {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != thread::current().id() {
                // A panic on the runtime thread was already reported there.
                let _ = thread.join();
            }
        }
    }
}
