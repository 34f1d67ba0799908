//! Group commit: frames arriving at the same time from many connections are written together.
//!
//! Each frame to store goes, with a oneshot for its result, through a bounded channel to a
//! writer task. A writer takes whatever is queued (up to [`MAX_BATCH`] frames), writes it in
//! one transaction ([`LoggerFrameWriter::write_logger_frames`]) and only then answers every
//! waiter, so a logger still gets its reply only once its frame is stored. While one batch
//! commits the next one queues up: under load a commit serves hundreds of frames instead of
//! one.
//!
//! - Order: a logger's frames always go to the same writer (by serial), which writes them in
//!   arrival order; a connection has at most one frame in flight anyway.
//! - A batch that fails because the database is unavailable fails every frame with
//!   [`SinkError::Unavailable`]: the spool in front of the sink keeps each of them on disk.
//! - A batch that fails for any other reason (one frame the database refuses) is written again
//!   frame by frame, so that only the bad frame fails.

use std::sync::Arc;

use deyehard_core::LoggerSerial;
use deyehard_solarman::listener::SinkError;
use deyehard_solarman::{FrameContent, FrameEvent};
use deyehard_store::{
    LoggerFrame, LoggerFrameKind, LoggerFrameOutcome, LoggerFrameWriter, RawFrameInput, StoreError,
};
use tokio::sync::{mpsc, oneshot};

/// Most frames written in one transaction.
pub const MAX_BATCH: usize = 256;
/// Frames that may wait for each writer; further senders wait for room.
const QUEUE_PER_WRITER: usize = 4 * MAX_BATCH;

/// A frame waiting for its writer, owned (it crosses to the writer task).
#[derive(Debug)]
pub(crate) struct PendingFrame {
    event: FrameEvent,
    remote: String,
    device_info: bool,
}

impl PendingFrame {
    /// `event` to store; `device_info`: also write what the device says about itself.
    pub(crate) fn new(event: FrameEvent, device_info: bool) -> Self {
        let remote = event.remote.to_string();
        Self {
            event,
            remote,
            device_info,
        }
    }

    /// The frame as the store takes it.
    fn view(&self) -> LoggerFrame<'_> {
        let event = &self.event;
        let kind = match &event.content {
            FrameContent::Data {
                timestamp: Some(_),
                decoded: Some(data),
                ..
            } => LoggerFrameKind::Reading {
                reading: &data.reading,
                device_info: self.device_info.then_some(&data.device_info),
            },
            FrameContent::Handshake(_) | FrameContent::Heartbeat => LoggerFrameKind::Seen,
            // Data without a device time or of an unknown layout, info, report, command
            // replies, unknown codes, undecodable payloads: kept raw.
            _ => LoggerFrameKind::Raw,
        };
        LoggerFrame {
            frame: RawFrameInput {
                logger_serial: event.logger,
                received_at: event.received_at,
                control: event.control,
                remote_addr: Some(&self.remote),
                bytes: &event.raw,
            },
            kind,
        }
    }
}

type Reply = oneshot::Sender<Result<LoggerFrameOutcome, SinkError>>;

/// The writer tasks and the way to them.
pub(crate) struct GroupCommit {
    writers: Vec<mpsc::Sender<(PendingFrame, Reply)>>,
}

impl GroupCommit {
    /// Spawns `writers` writer tasks (at least one) on the current Tokio runtime. They end
    /// once this is dropped and their queues are empty.
    pub(crate) fn start<W>(store: Arc<W>, writers: usize) -> Self
    where
        W: LoggerFrameWriter + Send + Sync + 'static,
    {
        let writers = (0..writers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_PER_WRITER);
                tokio::spawn(run_writer(store.clone(), rx));
                tx
            })
            .collect();
        Self { writers }
    }

    /// Writes `frame` with the next batch of its writer; returns once that batch committed
    /// (or failed).
    pub(crate) async fn write(&self, frame: PendingFrame) -> Result<LoggerFrameOutcome, SinkError> {
        let writer = self
            .writers
            .get(writer_index(frame.event.logger, self.writers.len()))
            .ok_or_else(|| SinkError::Unavailable("no frame writer".into()))?;
        let (reply, result) = oneshot::channel();
        writer
            .send((frame, reply))
            .await
            .map_err(|_| SinkError::Unavailable("the frame writer has stopped".into()))?;
        result
            .await
            .map_err(|_| SinkError::Unavailable("the frame writer has stopped".into()))?
    }
}

/// The writer of a logger: always the same one, so its frames stay in order.
fn writer_index(logger: LoggerSerial, writers: usize) -> usize {
    usize::try_from(logger.get()).unwrap_or(0) % writers.max(1)
}

/// Takes whatever is queued, up to [`MAX_BATCH`] frames, and commits it; until the channel
/// closes.
async fn run_writer<W: LoggerFrameWriter>(
    store: Arc<W>,
    mut queue: mpsc::Receiver<(PendingFrame, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(store.as_ref(), &mut batch).await;
        batch.clear();
    }
}

/// Writes `batch` in one transaction and answers every frame of it.
async fn commit<W: LoggerFrameWriter>(store: &W, batch: &mut Vec<(PendingFrame, Reply)>) {
    let written = {
        let frames: Vec<LoggerFrame<'_>> = batch.iter().map(|(frame, _)| frame.view()).collect();
        store.write_logger_frames(&frames).await
    };
    metrics::histogram!(crate::ops::COMMIT_BATCH_FRAMES).record(usize_f64(batch.len()));
    match written {
        Ok(outcomes) if outcomes.len() == batch.len() => {
            for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                // A waiter that went away (connection closed) needs no answer.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(StoreError::Unavailable(reason)) => {
            let err = SinkError::Unavailable(reason.to_string());
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(err.clone()));
            }
        }
        Err(err) if batch.len() == 1 => {
            if let Some((_, reply)) = batch.pop() {
                let _ = reply.send(Err(sink_error(err)));
            }
        }
        other => {
            let reason = match other {
                Err(e) => e.to_string(),
                Ok(outcomes) => format!("{} outcomes for {} frames", outcomes.len(), batch.len()),
            };
            tracing::warn!(
                frames = batch.len(),
                reason,
                "a batch of frames failed; writing them one by one"
            );
            for (frame, reply) in batch.drain(..) {
                let result = store
                    .write_logger_frames(std::slice::from_ref(&frame.view()))
                    .await
                    .map_err(sink_error)
                    .and_then(|outcomes| {
                        outcomes.into_iter().next().ok_or_else(|| {
                            SinkError::Unavailable("the store returned no outcome".into())
                        })
                    });
                let _ = reply.send(result);
            }
        }
    }
}

/// A store error as the listener sees it.
pub(crate) fn sink_error(err: StoreError) -> SinkError {
    match err {
        // Worth retrying: keep the frame in the spool.
        StoreError::Unavailable(_) | StoreError::Backend(_) => {
            SinkError::Unavailable(err.to_string())
        }
        // Will never succeed: log and acknowledge.
        StoreError::NotFound
        | StoreError::Conflict(_)
        | StoreError::Forbidden
        | StoreError::Invalid(_) => SinkError::Rejected(err.to_string()),
    }
}

fn usize_f64(n: usize) -> f64 {
    u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use chrono::Utc;
    use tokio::sync::Semaphore;

    use super::*;

    /// A store that records the batch sizes, refuses batches holding [`POISON`] and can hold
    /// the first write until released.
    struct FakeStore {
        batches: Mutex<Vec<usize>>,
        gate: Semaphore,
        unavailable: bool,
    }

    const POISON: u32 = 666;

    impl FakeStore {
        fn new(gated: bool, unavailable: bool) -> Arc<Self> {
            Arc::new(Self {
                batches: Mutex::new(Vec::new()),
                gate: Semaphore::new(if gated { 0 } else { Semaphore::MAX_PERMITS }),
                unavailable,
            })
        }

        fn batches(&self) -> Vec<usize> {
            self.batches.lock().unwrap().clone()
        }
    }

    impl LoggerFrameWriter for FakeStore {
        async fn write_logger_frames(
            &self,
            frames: &[LoggerFrame<'_>],
        ) -> Result<Vec<LoggerFrameOutcome>, StoreError> {
            self.batches.lock().unwrap().push(frames.len());
            // Held until the test adds permits; each write takes one for good.
            self.gate.acquire().await.unwrap().forget();
            if self.unavailable {
                return Err(StoreError::Unavailable("down".into()));
            }
            if frames.iter().any(|f| f.frame.logger_serial.get() == POISON) {
                return Err(StoreError::Conflict("poison".into()));
            }
            Ok(vec![LoggerFrameOutcome::Unclaimed; frames.len()])
        }
    }

    fn heartbeat(logger: u32) -> PendingFrame {
        let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        PendingFrame::new(
            FrameEvent {
                logger: LoggerSerial::new(logger),
                remote,
                received_at: Utc::now(),
                control: 0x4710,
                raw: vec![0xa5],
                content: FrameContent::Heartbeat,
            },
            false,
        )
    }

    /// Sends one frame per logger at once; the results by logger.
    async fn write_all(
        commit: &Arc<GroupCommit>,
        loggers: impl IntoIterator<Item = u32>,
    ) -> tokio::task::JoinSet<(u32, Result<LoggerFrameOutcome, SinkError>)> {
        let mut tasks = tokio::task::JoinSet::new();
        for logger in loggers {
            let commit = commit.clone();
            tasks.spawn(async move { (logger, commit.write(heartbeat(logger)).await) });
        }
        tasks
    }

    /// Waits until `n` frames wait in the (only) writer's queue.
    async fn queued(commit: &GroupCommit, n: usize) {
        let writer = &commit.writers[0];
        while writer.max_capacity() - writer.capacity() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn frames_queued_during_a_commit_share_the_next_one() {
        let store = FakeStore::new(true, false);
        let commit = Arc::new(GroupCommit::start(store.clone(), 1));
        let mut first = write_all(&commit, [1]).await;
        while store.batches().is_empty() {
            tokio::task::yield_now().await;
        }
        let mut rest = write_all(&commit, 2..=40).await;
        queued(&commit, 39).await;
        store.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        for tasks in [&mut first, &mut rest] {
            while let Some(done) = tasks.join_next().await {
                assert_eq!(done.unwrap().1, Ok(LoggerFrameOutcome::Unclaimed));
            }
        }
        assert_eq!(store.batches(), [1, 39], "one commit for all that queued");
    }

    #[tokio::test]
    async fn a_bad_frame_fails_alone() {
        let store = FakeStore::new(true, false);
        let commit = Arc::new(GroupCommit::start(store.clone(), 1));
        let mut first = write_all(&commit, [1]).await;
        while store.batches().is_empty() {
            tokio::task::yield_now().await;
        }
        let mut rest = write_all(&commit, [2, 3, POISON, 4]).await;
        queued(&commit, 4).await;
        store.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        let (_, result) = first.join_next().await.unwrap().unwrap();
        assert_eq!(result, Ok(LoggerFrameOutcome::Unclaimed));
        while let Some(done) = rest.join_next().await {
            let (logger, result) = done.unwrap();
            if logger == POISON {
                assert!(matches!(result, Err(SinkError::Rejected(_))), "{result:?}");
            } else {
                assert_eq!(result, Ok(LoggerFrameOutcome::Unclaimed), "logger {logger}");
            }
        }
        assert_eq!(
            store.batches(),
            [1, 4, 1, 1, 1, 1],
            "the batch, then frame by frame"
        );
    }

    #[tokio::test]
    async fn an_unavailable_database_fails_the_whole_batch_at_once() {
        let store = FakeStore::new(true, true);
        let commit = Arc::new(GroupCommit::start(store.clone(), 1));
        let mut first = write_all(&commit, [1]).await;
        while store.batches().is_empty() {
            tokio::task::yield_now().await;
        }
        let mut rest = write_all(&commit, 2..=10).await;
        queued(&commit, 9).await;
        store.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        for tasks in [&mut first, &mut rest] {
            while let Some(done) = tasks.join_next().await {
                let (_, result) = done.unwrap();
                assert!(
                    matches!(result, Err(SinkError::Unavailable(_))),
                    "{result:?}"
                );
            }
        }
        assert_eq!(store.batches(), [1, 9], "no frame-by-frame retries");
    }

    #[test]
    fn a_logger_always_has_the_same_writer() {
        let serial = LoggerSerial::new(3_939_932_716);
        assert_eq!(writer_index(serial, 4), writer_index(serial, 4));
        assert_eq!(writer_index(serial, 1), 0);
        assert!(writer_index(LoggerSerial::new(7), 4) < 4);
    }
}
