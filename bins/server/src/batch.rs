//! Group commit for pushed readings: concurrent pushes of one tenant share one store
//! transaction, and a push is answered only after that transaction committed.
//!
//! Each tenant has a queue and up to [`Batcher::new`]'s `max_writers` writer tasks (one on
//! SQLite, whose single writer connection serializes everything anyway; one by default on
//! PostgreSQL too, where more overlap one batch's round trips with the next batch's but make
//! the batches smaller; see `IngestOptions::writers_per_tenant`). A push joins its tenant's
//! queue and, if fewer writers than allowed are running, starts one. A writer takes everything
//! queued (up to `max_readings`), resolves the serials to the tenant's inverters, writes the
//! batch with one [`ReadingWriter::write_readings`], answers every push of the batch and loops
//! until the queue is empty. Under light load a batch is a single push and nothing waits; under
//! heavy load batches grow by themselves to what arrives while the previous ones commit.
//!
//! - All of one push's readings land in the same transaction: a push is stored whole or not at
//!   all. If a batch of several pushes fails for another reason than an unreachable database,
//!   each push is retried alone, so one bad push cannot fail its neighbours.
//! - Concurrent writers of one tenant are safe: the store locks a batch's inverters first, in id
//!   order (on SQLite the one writer connection serializes them), so writes of one inverter
//!   serialize (and a reading that loses the race is handled as a late one).
//! - The writer is a spawned task: a client that hangs up does not cancel a write that other
//!   pushes wait for. When serving, the writers run on a [`WriterRuntime`] (a thread of their
//!   own, with a connection pool of their own on PostgreSQL), so that each reply of the database
//!   resumes the writer at once instead of after the HTTP work queued on the main runtime: under
//!   load a write transaction waits for several replies, and each wait lengthened every push of
//!   the batch. Measured on two cores with 64 clients, in alternated runs, together with the
//!   store's fewer round trips: 4,200–5,200 instead of 3,700–4,000 pushes/s; a one-worker
//!   multi-thread runtime in place of this current-thread one gained nothing.
//! - Tenants do not wait for each other (separate queues, separate transactions, as Row-Level
//!   Security wants).
//!
//! Serial → inverter maps are cached per tenant for [`INVERTER_CACHE_TTL`]. The cache is exact
//! for what happens in this process (every inverter change made through the server calls
//! [`Batcher::forget_inverters`] or [`Batcher::forget_all_inverters`]) and for new inverters
//! anywhere (a serial missing from a map fetched before the push arrived triggers a fresh
//! lookup); a deleted inverter is refused by the store's ownership check in any case. Only a
//! serial moved between inverters by another process (another server on the same database) can
//! be seen late, by at most the TTL.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use deyehard_collector::ops::INGEST_BATCH_PUSHES;
use deyehard_core::{DeviceSerial, InverterId, Reading, TenantScope, UserId};
use deyehard_store::{InverterStore, ReadingWriter, Store, StoreError, WriteOutcome};
use tokio::runtime::Handle;
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

/// How long a tenant's serial → inverter map is used without asking the store again (changes
/// made through this server apply at once; see the module documentation).
pub const INVERTER_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most tenants whose maps are cached; beyond it, expired maps are dropped and then, if
/// needed, all.
const MAX_CACHED_TENANTS: usize = 10_000;

/// One push waiting in a queue.
struct Job {
    readings: Vec<(DeviceSerial, Reading)>,
    reply: Reply,
    queued: Instant,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Writers running for this queue.
    writers: usize,
}

/// A tenant's registered serials, as fetched at `fetched` (the start of the lookup).
#[derive(Clone)]
struct Known {
    serials: Arc<HashMap<DeviceSerial, InverterId>>,
    fetched: Instant,
}

/// A thread of its own for the batch writers, with a single-threaded runtime, and the store
/// they write through: on PostgreSQL a pool of its own, connected from that thread so that its
/// sockets are driven by it; on SQLite the shared store (its single writer connection has a
/// thread of its own anyway). See the module documentation for why.
pub struct WriterRuntime {
    handle: Handle,
    store: Arc<Store>,
    /// Whether `store` is a pool of its own (reported as `ingest` on `/metrics`).
    own_pool: bool,
    /// Ends the thread's runtime when sent or dropped.
    stop: Option<oneshot::Sender<()>>,
}

impl WriterRuntime {
    /// Starts the thread; with a PostgreSQL `store`, connects a second pool of it from there.
    pub async fn start(store: &Arc<Store>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the ingest runtime")?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("deyehard-ingest".to_owned())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .context("cannot start the ingest thread")?;
        let shared = store.clone();
        let own = handle
            .spawn(async move { shared.with_own_pool().await })
            .await
            .context("the ingest runtime failed")?
            .context("cannot connect the ingest pool")?;
        Ok(Self {
            handle,
            own_pool: own.is_some(),
            store: own.map_or_else(|| store.clone(), Arc::new),
            stop: Some(stop),
        })
    }

    /// The writers' pool for `/metrics`, as `ingest`, when it is their own.
    pub fn named_pools(&self) -> deyehard_collector::ops::NamedPools {
        if self.own_pool {
            vec![("ingest", self.store.clone())]
        } else {
            Vec::new()
        }
    }

    /// Closes the writers' pool (when it is their own) and ends the thread: call once the
    /// pushes are answered (the web server stopped).
    pub async fn shutdown(mut self) {
        if self.own_pool {
            self.store.close().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Per-tenant queues, their writers, and the tenants' serial maps.
pub struct Batcher {
    store: Arc<Store>,
    /// Where the writers run: the caller's runtime when `None`.
    runtime: Option<Handle>,
    max_readings: usize,
    max_writers: usize,
    queues: Mutex<HashMap<TenantScope, Queue>>,
    known: Mutex<HashMap<TenantScope, Known>>,
    /// Bumped by every invalidation: a lookup that started before one is not cached.
    generation: AtomicU64,
}

impl Batcher {
    /// A batcher writing to `store`, at most `max_readings` readings per transaction (a push
    /// larger than that is written alone) and at most `max_writers` transactions of one tenant
    /// at a time.
    pub fn new(store: Arc<Store>, max_readings: usize, max_writers: usize) -> Arc<Self> {
        Self::build(store, None, max_readings, max_writers)
    }

    /// Like [`Batcher::new`], with the writers on `runtime` and writing through its store.
    pub fn on(runtime: &WriterRuntime, max_readings: usize, max_writers: usize) -> Arc<Self> {
        Self::build(
            runtime.store.clone(),
            Some(runtime.handle.clone()),
            max_readings,
            max_writers,
        )
    }

    fn build(
        store: Arc<Store>,
        runtime: Option<Handle>,
        max_readings: usize,
        max_writers: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            runtime,
            max_readings: max_readings.max(1),
            max_writers: max_writers.max(1),
            queues: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
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
            let mut queues = self.lock_queues();
            let queue = queues.entry(scope).or_default();
            queue.jobs.push_back(Job {
                readings,
                reply,
                queued: Instant::now(),
            });
            let start = queue.writers < self.max_writers;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            let writer = self.clone().drain(scope);
            match &self.runtime {
                Some(runtime) => drop(runtime.spawn(writer)),
                None => drop(tokio::spawn(writer)),
            }
        }
        // The writer always answers; a dropped sender means it panicked.
        answer.await.unwrap_or(Err(BatchError::Failed))
    }

    /// Drops the cached serial map of `user`: call after creating, changing or deleting one of
    /// their inverters, or deleting the user.
    pub fn forget_inverters(&self, user: UserId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock_known().retain(|scope, _| scope.user_id() != user);
    }

    /// Drops every cached serial map: call after changes that span tenants (an inverter moved
    /// to another owner).
    pub fn forget_all_inverters(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock_known().clear();
    }

    fn lock_queues(&self) -> std::sync::MutexGuard<'_, HashMap<TenantScope, Queue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, HashMap<TenantScope, Known>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A writer of one tenant: writes batches until the queue is empty.
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

    /// Takes the next batch off the queue; when there is none, ends this writer's turn (under
    /// the lock, so a push arriving now starts a new writer).
    fn next_batch(&self, scope: &TenantScope) -> Vec<Job> {
        let mut queues = self.lock_queues();
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
            queue.writers = queue.writers.saturating_sub(1);
            if queue.writers == 0 {
                queues.remove(scope);
            }
        }
        jobs
    }

    /// The serial map to resolve `jobs` with: the cached one while it is fresh and knows every
    /// serial (or was fetched after the oldest job arrived), else a new lookup.
    async fn registered(
        &self,
        scope: &TenantScope,
        jobs: &[Job],
    ) -> Result<Arc<HashMap<DeviceSerial, InverterId>>, StoreError> {
        let now = Instant::now();
        let cached = self
            .lock_known()
            .get(scope)
            .filter(|known| now.saturating_duration_since(known.fetched) < INVERTER_CACHE_TTL)
            .cloned();
        if let Some(known) = cached {
            let oldest = jobs.iter().map(|job| job.queued).min().unwrap_or(now);
            let complete = || {
                jobs.iter()
                    .flat_map(|job| &job.readings)
                    .all(|(serial, _)| known.serials.contains_key(serial))
            };
            if known.fetched >= oldest || complete() {
                return Ok(known.serials);
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let fetched = Instant::now();
        let serials: Arc<HashMap<DeviceSerial, InverterId>> = Arc::new(
            self.store
                .inverters(scope)
                .await?
                .into_iter()
                .filter_map(|inv| Some((inv.serial?, inv.id)))
                .collect(),
        );
        let mut known = self.lock_known();
        if self.generation.load(Ordering::SeqCst) == generation {
            if known.len() >= MAX_CACHED_TENANTS && !known.contains_key(scope) {
                known.retain(|_, k| {
                    fetched.saturating_duration_since(k.fetched) < INVERTER_CACHE_TTL
                });
                if known.len() >= MAX_CACHED_TENANTS {
                    known.clear();
                }
            }
            let newer = known.get(scope).is_some_and(|k| k.fetched > fetched);
            if !newer {
                known.insert(
                    *scope,
                    Known {
                        serials: serials.clone(),
                        fetched,
                    },
                );
            }
        }
        Ok(serials)
    }

    /// Writes one batch and answers its pushes.
    async fn write(&self, scope: &TenantScope, jobs: Vec<Job>) {
        let registered = match self.registered(scope, &jobs).await {
            Ok(registered) => registered,
            Err(err) => {
                let err = BatchError::from(&err);
                for job in jobs {
                    let _ = job.reply.send(Err(err));
                }
                return;
            }
        };
        metrics::histogram!(INGEST_BATCH_PUSHES).record(jobs.len() as f64);
        let batch = Batch::build(jobs, &registered);
        let received_at = Utc::now();
        let outcomes = self
            .store
            .write_readings(scope, &batch.readings, received_at)
            .await;
        match outcomes {
            Ok(outcomes) => {
                if outcomes.contains(&WriteOutcome::NotFound) {
                    // An inverter of the map is gone (deleted elsewhere): look up again next time.
                    self.forget_inverters(scope.user_id());
                }
                batch.answer_all(&outcomes);
            }
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

/// Ends a writer's turn even if it panicked: when it was the queue's last writer, the queue is
/// dropped (the waiting pushes get an error) so that the next push starts a fresh writer.
struct WriterGuard<'a> {
    batcher: &'a Batcher,
    scope: TenantScope,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queues = self.batcher.lock_queues();
            if let Some(queue) = queues.get_mut(&self.scope) {
                queue.writers = queue.writers.saturating_sub(1);
                if queue.writers == 0 {
                    queues.remove(&self.scope);
                }
            }
        }
    }
}
