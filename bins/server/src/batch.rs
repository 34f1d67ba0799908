//! Group commit for pushed readings: concurrent pushes of one tenant share one store
//! transaction, and a push is answered only after that transaction committed.
//!
//! Each tenant has a queue and at most one writer task. A push joins its tenant's queue; if no
//! writer is running, it starts one. The writer takes everything queued (up to
//! [`Batcher::new`]'s `max_readings`), looks the serials up among the tenant's inverters, writes
//! the batch with one [`ReadingWriter::write_readings`], answers every push of the batch and
//! loops until the queue is empty. Under light load a batch is a single push and nothing waits;
//! under heavy load batches grow by themselves to what arrives while the previous one commits.
//!
//! - All of one push's readings land in the same transaction: a push is stored whole or not at
//!   all. If a batch of several pushes fails for another reason than an unreachable database,
//!   each push is retried alone, so one bad push cannot fail its neighbours.
//! - The writer is a spawned task: a client that hangs up does not cancel a write that other
//!   pushes wait for.
//! - Tenants do not wait for each other (separate queues, separate transactions, as Row-Level
//!   Security wants).

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use deyehard_core::{DeviceSerial, InverterId, Reading, TenantScope};
use deyehard_store::{InverterStore, ReadingWriter, Store, StoreError, WriteOutcome};
use tokio::sync::oneshot;

/// What became of one reading of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored now.
    Stored(InverterId),
    /// The same inverter and time was stored before: nothing changed.
    Duplicate(InverterId),
    /// The tenant has no inverter with this serial: nothing stored.
    NotRegistered,
}

/// Why a push could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The database cannot be reached or is overloaded; retrying later may work.
    #[error("the database is unavailable")]
    Unavailable,
    /// Anything else (logged where it happened).
    #[error("the readings could not be written")]
    Failed,
}

impl From<&StoreError> for BatchError {
    fn from(err: &StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::Unavailable,
            other => {
                tracing::error!(error = %other, "writing pushed readings failed");
                Self::Failed
            }
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<ItemOutcome>, BatchError>>;

/// One push waiting in a queue.
struct Job {
    readings: Vec<(DeviceSerial, Reading)>,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    writing: bool,
}

/// Per-tenant queues and their writers.
pub struct Batcher {
    store: Arc<Store>,
    max_readings: usize,
    queues: Mutex<HashMap<TenantScope, Queue>>,
}

impl Batcher {
    /// A batcher writing to `store`, at most `max_readings` readings per transaction (a push
    /// larger than that is written alone).
    pub fn new(store: Arc<Store>, max_readings: usize) -> Arc<Self> {
        Arc::new(Self {
            store,
            max_readings: max_readings.max(1),
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Stores the readings of one push for `scope`, keyed by inverter serial, and returns one
    /// outcome per reading, in order, once they are committed.
    pub async fn submit(
        self: &Arc<Self>,
        scope: TenantScope,
        readings: Vec<(DeviceSerial, Reading)>,
    ) -> Result<Vec<ItemOutcome>, BatchError> {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut queues = self.lock();
            let queue = queues.entry(scope).or_default();
            queue.jobs.push_back(Job { readings, reply });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            tokio::spawn(self.clone().drain(scope));
        }
        // The writer always answers; a dropped sender means it panicked.
        answer.await.unwrap_or(Err(BatchError::Failed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantScope, Queue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer of one tenant: writes batches until the queue is empty.
    async fn drain(self: Arc<Self>, scope: TenantScope) {
        let _guard = WriterGuard {
            batcher: &self,
            scope,
        };
        loop {
            let jobs = self.next_batch(&scope);
            if jobs.is_empty() {
                return;
            }
            self.write(&scope, jobs).await;
        }
    }

    /// Takes the next batch off the queue; when there is none, ends the writer's turn (under
    /// the lock, so a push arriving now starts a new writer).
    fn next_batch(&self, scope: &TenantScope) -> Vec<Job> {
        let mut queues = self.lock();
        let Some(queue) = queues.get_mut(scope) else {
            return Vec::new();
        };
        let mut jobs = Vec::new();
        let mut readings = 0;
        while let Some(job) = queue.jobs.front() {
            if !jobs.is_empty() && readings + job.readings.len() > self.max_readings {
                break;
            }
            readings += job.readings.len();
            jobs.extend(queue.jobs.pop_front());
        }
        if jobs.is_empty() {
            queues.remove(scope);
        }
        jobs
    }

    /// Writes one batch and answers its pushes.
    async fn write(&self, scope: &TenantScope, jobs: Vec<Job>) {
        let registered = match self.store.inverters(scope).await {
            Ok(inverters) => inverters
                .into_iter()
                .filter_map(|inv| Some((inv.serial?, inv.id)))
                .collect::<HashMap<DeviceSerial, InverterId>>(),
            Err(err) => {
                let err = BatchError::from(&err);
                for job in jobs {
                    let _ = job.reply.send(Err(err));
                }
                return;
            }
        };
        let batch = Batch::build(jobs, &registered);
        let received_at = Utc::now();
        let outcomes = self
            .store
            .write_readings(scope, &batch.readings, received_at)
            .await;
        match outcomes {
            Ok(outcomes) => batch.answer_all(&outcomes),
            Err(StoreError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "database unavailable for pushed readings");
                batch.fail_all(BatchError::Unavailable);
            }
            Err(err) if batch.pushes.len() > 1 => {
                tracing::warn!(error = %err, pushes = batch.pushes.len(), "batch failed; writing its pushes one by one");
                for push in batch.pushes {
                    let range = push.range.clone();
                    let part = &batch.readings[range.clone()];
                    let result = self.store.write_readings(scope, part, received_at).await;
                    push.answer(result.as_deref().map_err(BatchError::from), range.start);
                }
            }
            Err(err) => batch.fail_all(BatchError::from(&err)),
        }
    }
}

/// Where one reading of a push went in the batch.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Index into the batch's readings, and the inverter.
    Written(usize, InverterId),
    /// Not registered: not part of the batch.
    Unknown,
}

/// One push of a batch.
struct Pending {
    slots: Vec<Slot>,
    /// Its readings in the batch (contiguous).
    range: Range<usize>,
    reply: Reply,
}

impl Pending {
    /// Answers from the outcomes of a write that started at batch index `offset`.
    fn answer(self, outcomes: Result<&[WriteOutcome], BatchError>, offset: usize) {
        let result = outcomes.and_then(|outcomes| {
            self.slots
                .iter()
                .map(|slot| match *slot {
                    Slot::Unknown => Ok(ItemOutcome::NotRegistered),
                    Slot::Written(index, id) => {
                        let outcome = index.checked_sub(offset).and_then(|i| outcomes.get(i));
                        match outcome {
                            Some(WriteOutcome::Stored) => Ok(ItemOutcome::Stored(id)),
                            Some(WriteOutcome::Duplicate) => Ok(ItemOutcome::Duplicate(id)),
                            // Deleted between the lookup and the write.
                            Some(WriteOutcome::NotFound) => Ok(ItemOutcome::NotRegistered),
                            None => {
                                tracing::error!(index, "the store returned too few outcomes");
                                Err(BatchError::Failed)
                            }
                        }
                    }
                })
                .collect()
        });
        let _ = self.reply.send(result);
    }
}

/// The readings of several pushes, concatenated.
struct Batch {
    readings: Vec<(InverterId, Reading)>,
    pushes: Vec<Pending>,
}

impl Batch {
    fn build(jobs: Vec<Job>, registered: &HashMap<DeviceSerial, InverterId>) -> Self {
        let mut readings = Vec::new();
        let mut pushes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let start = readings.len();
            let mut slots = Vec::with_capacity(job.readings.len());
            for (serial, reading) in job.readings {
                match registered.get(&serial) {
                    Some(&id) => {
                        slots.push(Slot::Written(readings.len(), id));
                        readings.push((id, reading));
                    }
                    None => slots.push(Slot::Unknown),
                }
            }
            pushes.push(Pending {
                slots,
                range: start..readings.len(),
                reply: job.reply,
            });
        }
        Self { readings, pushes }
    }

    fn answer_all(self, outcomes: &[WriteOutcome]) {
        for push in self.pushes {
            push.answer(Ok(outcomes), 0);
        }
    }

    fn fail_all(self, err: BatchError) {
        for push in self.pushes {
            let _ = push.reply.send(Err(err));
        }
    }
}

/// Ends a writer's turn even if it panicked: its queue is dropped (the waiting pushes get an
/// error) so that the next push starts a fresh writer.
struct WriterGuard<'a> {
    batcher: &'a Batcher,
    scope: TenantScope,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.batcher.lock().remove(&self.scope);
        }
    }
}
