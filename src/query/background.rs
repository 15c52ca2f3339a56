//! Where a query's operators run.
//!
//! DataFusion's operators never give up a worker thread in the middle of a
//! batch, so a scan of many blocks on the runtime that also serves the
//! connections makes every other session's small query wait for a thread: a
//! point lookup took 40 ms while another session ran TPC-H Q1, against 3 ms
//! alone. Statements that read more than `--heavy-query-blocks` blocks
//! (default [`DEFAULT_HEAVY_QUERY_BLOCKS`]) therefore run on a second runtime
//! whose threads have a lower scheduling priority (nice 10): the kernel gives
//! the connection runtime's threads the CPU first, and the heavy query gets
//! all of it when nothing else wants it. The batches
//! reach the session through a channel of two, so the result still streams
//! with bounded memory, and a statement that is cancelled or whose client goes
//! away stops its operators at once.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::{FutureExt, StreamExt};
use tokio::runtime::Runtime;
use tracing::Instrument;

use super::BatchStream;
use super::error::from_datafusion;
use crate::error::{Error, Result};

/// Statements reading at most this many blocks run with the connections
/// unless the server is told otherwise (`--heavy-query-blocks`).
pub const DEFAULT_HEAVY_QUERY_BLOCKS: usize = 2;

/// Nice value of the heavy queries' threads (0 is the server's own).
const NICE: i32 = 10;

fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("fusegate-query")
                .thread_stack_size(crate::sql::STACK_SIZE)
                .on_thread_start(|| {
                    // Linux: `who = 0` is the calling thread, not the process.
                    // SAFETY: setpriority only reads its integer arguments.
                    unsafe {
                        libc::setpriority(libc::PRIO_PROCESS, 0, NICE);
                    }
                })
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("cannot start the query runtime: {e}")))
}

/// Runs `plan` on the heavy-query runtime and streams its batches back.
pub fn execute(plan: Arc<dyn ExecutionPlan>, context: Arc<TaskContext>) -> Result<BatchStream> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<_>>(2);
    let work = {
        let tx = tx.clone();
        async move {
            // Operators spawn their tasks on the runtime that executes them.
            let mut stream = match execute_stream(plan, context) {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = tx.send(Err(from_datafusion(e))).await;
                    return;
                }
            };
            loop {
                let next = tokio::select! {
                    // The session dropped the result (cancel, timeout, error
                    // sending): stop computing now, not at the next batch.
                    _ = tx.closed() => return,
                    next = stream.next() => next,
                };
                let Some(item) = next else { return };
                if tx.send(item.map_err(from_datafusion)).await.is_err() {
                    return;
                }
            }
        }
    };
    let task = async move {
        // A panic must not look like the end of the result.
        if AssertUnwindSafe(work).catch_unwind().await.is_err() {
            let _ = tx
                .send(Err(Error::internal("the query's execution panicked")))
                .await;
        }
    };
    runtime()?.spawn(task.instrument(tracing::Span::current()));
    Ok(Box::pin(tokio_stream_of(rx)))
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
