//! Stopping a running statement: a client's CancelRequest or the session's
//! statement_timeout. Both end the statement with 57014, as in PostgreSQL.
//!
//! Each statement gets a fresh [`Deadline`]; result streams and the
//! reading side of writes check it, so an interrupted statement fails
//! through its normal error path — nothing is committed, blocks written so
//! far are removed. A commit that has begun is never interrupted.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{FutureExt, Stream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::BatchStream;
use crate::error::{Error, ErrorKind, Result};

/// A session's interrupt switch; the handle a CancelRequest pulls.
#[derive(Default)]
pub struct Interrupt {
    current: Mutex<Deadline>,
    /// Set when the server stops: the cancel then says so (57P01).
    shutting_down: Arc<AtomicBool>,
    activity: Arc<Activity>,
}

/// When the session last started or finished sending a statement's result,
/// for idle_session_timeout: a session is idle while no result is being
/// streamed and nothing has started since.
#[derive(Debug)]
struct Activity {
    last: Mutex<std::time::Instant>,
    streams: AtomicUsize,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            last: Mutex::new(std::time::Instant::now()),
            streams: AtomicUsize::new(0),
        }
    }
}

impl Activity {
    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = std::time::Instant::now();
        }
    }
}

/// Counts an open result stream; its end is activity too.
struct Streaming(Arc<Activity>);

impl Streaming {
    fn new(activity: &Arc<Activity>) -> Streaming {
        activity.streams.fetch_add(1, Ordering::Relaxed);
        Streaming(activity.clone())
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.touch();
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Interrupt {
    /// Starts a statement: a new deadline, `timeout` from now (None: no limit).
    pub fn arm(&self, timeout: Option<Duration>) -> Deadline {
        self.activity.touch();
        let deadline = Deadline {
            token: CancellationToken::new(),
            at: timeout.map(|t| Instant::now() + t),
            shutting_down: self.shutting_down.clone(),
            activity: self.activity.clone(),
        };
        if let Ok(mut current) = self.current.lock() {
            *current = deadline.clone();
        }
        deadline
    }

    /// The running statement's deadline.
    pub fn current(&self) -> Deadline {
        self.current.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Cancels the running statement, if any (a finished one is unaffected).
    pub fn cancel(&self) {
        self.current().token.cancel();
    }

    /// How long the session has done nothing: no statement started and no
    /// result streamed (None while a result is being streamed). A statement
    /// still running counts as idle here; the caller knows better.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.activity.streams.load(Ordering::Relaxed) > 0 {
            return None;
        }
        self.activity.last.lock().ok().map(|last| last.elapsed())
    }

    /// Stops the running statement because the server is shutting down.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        self.cancel();
    }
}

/// When one statement must stop: on cancel, or at a time.
#[derive(Clone, Default)]
pub struct Deadline {
    token: CancellationToken,
    at: Option<Instant>,
    shutting_down: Arc<AtomicBool>,
    activity: Arc<Activity>,
}

impl Deadline {
    /// Fails if the statement was cancelled or ran out of time.
    pub fn check(&self) -> Result<()> {
        if self.token.is_cancelled() {
            return Err(self.cancelled());
        }
        match self.at {
            Some(at) if Instant::now() >= at => Err(timed_out()),
            _ => Ok(()),
        }
    }

    fn cancelled(&self) -> Error {
        if self.shutting_down.load(Ordering::Relaxed) {
            Error::new(
                ErrorKind::AdminShutdown,
                "terminating connection due to administrator command",
            )
        } else {
            canceled_by_user()
        }
    }

    /// `stream`, ending with 57014 as soon as the statement is interrupted —
    /// also while it waits for its next batch.
    pub fn guard(&self, stream: BatchStream) -> BatchStream {
        Box::pin(Guarded {
            _streaming: Streaming::new(&self.activity),
            deadline: self.clone(),
            inner: Some(stream),
            cancelled: Box::pin(self.token.clone().cancelled_owned()),
            timer: self.at.map(|at| Box::pin(tokio::time::sleep_until(at))),
        })
    }
}

fn canceled_by_user() -> Error {
    Error::new(
        ErrorKind::QueryCanceled,
        "canceling statement due to user request",
    )
}

fn timed_out() -> Error {
    Error::new(
        ErrorKind::QueryCanceled,
        "canceling statement due to statement timeout",
    )
}

struct Guarded {
    _streaming: Streaming,
    deadline: Deadline,
    /// None once interrupted: the plan is dropped, stopping its work.
    inner: Option<BatchStream>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Stream for Guarded {
    type Item = Result<arrow::array::RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        let error = if self.cancelled.poll_unpin(cx).is_ready() {
            Some(self.deadline.cancelled())
        } else if let Some(timer) = self.timer.as_mut() {
            timer.poll_unpin(cx).is_ready().then(timed_out)
        } else {
            None
        };
        if let Some(error) = error {
            self.inner = None;
            return Poll::Ready(Some(Err(error)));
        }
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

/// The session's [`Interrupt`], reachable from DataFusion's task context
/// (a session config extension) by the table sinks.
pub fn deadline_of(config: &datafusion::prelude::SessionConfig) -> Deadline {
    config
        .get_extension::<Interrupt>()
        .map(|i| i.current())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn cancel_and_timeout_end_a_waiting_stream() {
        let interrupt = Interrupt::default();
        let deadline = interrupt.arm(None);
        let mut stream = deadline.guard(Box::pin(futures::stream::pending()));
        interrupt.cancel();
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.sqlstate(), "57014");
        assert_eq!(err.message(), "canceling statement due to user request");
        assert!(stream.next().await.is_none());

        // A cancel between statements does not reach the next one.
        interrupt.cancel();
        let deadline = interrupt.arm(Some(Duration::from_millis(20)));
        assert!(deadline.check().is_ok());
        let mut stream = deadline.guard(Box::pin(futures::stream::pending()));
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(
            err.message(),
            "canceling statement due to statement timeout"
        );
        assert!(deadline.check().is_err());
    }
}
