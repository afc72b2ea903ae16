//! The card worker: one thread that runs the portal's card jobs, one at a time, in the order
//! they were started. A job is a future built on the worker (the download flow's futures hold
//! the card client and a step callback across their awaits and need not be `Send`), on the
//! worker's own single-threaded runtime; a card in a PC/SC reader blocks this thread, never the
//! web server's.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

/// A job: made on the worker thread from what the handler moved into it.
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Hands jobs to the worker thread. Dropping it ends the thread after the job it runs.
pub struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
}

/// The worker thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the portal's card worker: {0}")]
pub struct WorkerError(#[source] pub std::io::Error);

impl Worker {
    pub fn start() -> Result<Worker, WorkerError> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(WorkerError)?;
        std::thread::Builder::new()
            .name("portal-card".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        job().await;
                    }
                });
            })
            .map_err(WorkerError)?;
        Ok(Worker { jobs })
    }

    /// Queues `job`. False when the worker has ended (the portal is stopping).
    pub fn run(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}
