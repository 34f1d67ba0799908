//! A local spool that keeps acknowledging loggers while the store is down (feature `listener`).
//!
//! [`SpoolingSink`] wraps the real sink. While the spool is empty each event goes to the inner
//! sink; when that says [`SinkError::Unavailable`], the event is appended to an on-disk file
//! and `sync_data`ed before `record` returns `Ok`, so the listener acknowledges a frame only once
//! it is durable somewhere. While the spool holds anything, new events are appended behind it
//! (so each logger's frames stay in order). [`SpoolingSink::run_replay`] drains the file into
//! the inner sink in order and truncates it once everything is stored; a spool a previous
//! process left behind is found by [`SpoolingSink::open`] and replayed the same way.
//!
//! File format (`solarman-spool.bin` in the given directory), one record per event:
//!
//! ```text
//!  u32 LE  body length
//!  u32 LE  CRC-32 (IEEE) of the body
//!  body    the FrameEvent as JSON
//! ```
//!
//! A record cut short by a crash, or whose CRC does not match, ends the valid part of the file:
//! `open` truncates it away (the logger never got an acknowledgement for it and resends).
//!
//! Delivery is at least once: a crash between storing a replayed event and advancing the
//! spool replays it again on the next start. The store must ignore duplicates (its keys are the
//! inverter and the device time, so a replayed reading is a no-op). One spool directory
//! belongs to one process.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use crate::event::FrameEvent;
use crate::listener::{FrameSink, SinkError};

/// Name of the spool file inside the spool directory.
pub const SPOOL_FILE_NAME: &str = "solarman-spool.bin";
/// Length + CRC in front of every record body.
const RECORD_HEADER_LEN: u64 = 8;
/// A length field above this is corruption, not an event.
const MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;

/// A [`FrameSink`] that spools to disk while its inner sink is unavailable.
pub struct SpoolingSink<S> {
    inner: Arc<S>,
    file: Arc<Mutex<SpoolFile>>,
    depth: Arc<AtomicU64>,
    wake: Notify,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl<S: FrameSink> SpoolingSink<S> {
    /// Opens (or creates) the spool in `dir`; events a previous process left there are
    /// counted (and a torn tail cut off) and will be replayed by
    /// [`run_replay`](Self::run_replay).
    pub async fn open(dir: impl AsRef<Path>, inner: Arc<S>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            SpoolFile::open(dir.join(SPOOL_FILE_NAME))
        })
        .await
        .map_err(io::Error::other)??;
        if file.pending > 0 {
            info!(events = file.pending, path = %file.path.display(), "spool holds events from an earlier run");
        }
        let depth = Arc::new(AtomicU64::new(file.pending));
        metrics::gauge!("solarman_spool_depth").set(depth_f64(file.pending));
        Ok(Self {
            inner,
            file: Arc::new(Mutex::new(file)),
            depth,
            wake: Notify::new(),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        })
    }

    /// Sets the replay retry delay: it starts at `min` and doubles up to `max` while the inner
    /// sink stays unavailable (default 1 s … 60 s).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Events waiting in the spool.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire)
    }

    /// Drains the spool into the inner sink until `shutdown` completes: woken by each append,
    /// retrying with backoff while the inner sink is unavailable.
    pub async fn run_replay(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut delay = self.backoff_min;
        loop {
            if self.depth() == 0 {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = self.wake.notified() => continue,
                }
            }
            match self.replay_one().await {
                Ok(true) => {
                    delay = self.backoff_min;
                    continue;
                }
                Ok(false) => debug!(retry_in = ?delay, "store still unavailable; spool kept"),
                Err(e) => error!(error = %e, retry_in = ?delay, "spool read failed"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.backoff_max);
        }
    }

    /// Replays the oldest event; false when the inner sink is still unavailable.
    async fn replay_one(&self) -> io::Result<bool> {
        let Some((body, len)) = self.with_file(SpoolFile::read_next).await? else {
            return Ok(true);
        };
        match serde_json::from_slice::<FrameEvent>(&body) {
            Err(e) => error!(error = %e, "unreadable spooled event skipped"),
            Ok(event) => match self.inner.record(event).await {
                Ok(()) => {}
                Err(SinkError::Rejected(reason)) => {
                    warn!(reason, "spooled event rejected by the store; dropped")
                }
                Err(SinkError::Unavailable(_)) => return Ok(false),
            },
        }
        self.with_file(move |file| file.advance(len)).await?;
        Ok(true)
    }

    async fn append(&self, event: &FrameEvent) -> io::Result<()> {
        let body = serde_json::to_vec(event)?;
        self.with_file(move |file| file.append(&body)).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Runs blocking file work off the async threads, then publishes the depth.
    async fn with_file<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut SpoolFile) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let file = Arc::clone(&self.file);
        let depth = Arc::clone(&self.depth);
        let result = tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            let result = work(&mut file);
            depth.store(file.pending, Ordering::Release);
            result
        })
        .await
        .map_err(io::Error::other)?;
        metrics::gauge!("solarman_spool_depth").set(depth_f64(self.depth()));
        result
    }
}

impl<S: FrameSink> FrameSink for SpoolingSink<S> {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        if self.depth() == 0 {
            match self.inner.record(event.clone()).await {
                Err(SinkError::Unavailable(reason)) => {
                    warn!(reason, "store unavailable; spooling to disk")
                }
                other => return other,
            }
        }
        self.append(&event)
            .await
            .map_err(|e| SinkError::Unavailable(format!("spool write failed: {e}")))
    }
}

fn depth_f64(depth: u64) -> f64 {
    // A gauge; precision beyond 2^53 events is irrelevant.
    u32::try_from(depth).map_or(f64::from(u32::MAX), f64::from)
}

/// The spool file and the replay position in it.
struct SpoolFile {
    file: File,
    path: PathBuf,
    /// Offset of the next record to replay.
    read_pos: u64,
    /// Records not yet replayed.
    pending: u64,
}

impl SpoolFile {
    fn open(path: PathBuf) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let (pending, valid_len) = scan(&mut file)?;
        let len = file.metadata()?.len();
        if valid_len < len {
            warn!(bytes = len - valid_len, path = %path.display(), "torn or corrupt spool tail removed");
            file.set_len(valid_len)?;
            file.sync_data()?;
        }
        Ok(Self {
            file,
            path,
            read_pos: 0,
            pending,
        })
    }

    fn append(&mut self, body: &[u8]) -> io::Result<()> {
        let len = u32::try_from(body.len())
            .ok()
            .filter(|&len| len <= MAX_RECORD_LEN)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "event too large for the spool")
            })?;
        let mut record = Vec::with_capacity(body.len() + 8);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc32(body).to_le_bytes());
        record.extend_from_slice(body);
        let before = self.file.metadata()?.len();
        if let Err(e) = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data())
        {
            // Leave no half record behind for the records after it.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        self.pending += 1;
        Ok(())
    }

    /// The next record's body and its length on disk; a corrupt record drops the rest.
    fn read_next(&mut self) -> io::Result<Option<(Vec<u8>, u64)>> {
        if self.pending == 0 {
            return Ok(None);
        }
        self.file.seek(SeekFrom::Start(self.read_pos))?;
        match read_record(&mut self.file)? {
            Some(body) => {
                let len = RECORD_HEADER_LEN + u64::try_from(body.len()).unwrap_or(u64::MAX);
                Ok(Some((body, len)))
            }
            None => {
                error!(lost = self.pending, path = %self.path.display(), "spool corrupt; dropping the rest");
                self.clear()?;
                Ok(None)
            }
        }
    }

    /// Marks the record of `len` bytes at the read position replayed; empties the file when
    /// nothing is left.
    fn advance(&mut self, len: u64) -> io::Result<()> {
        self.read_pos += len;
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            self.clear()
        } else {
            Ok(())
        }
    }

    fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.read_pos = 0;
        self.pending = 0;
        Ok(())
    }
}

/// Counts the valid records from the start; returns (count, bytes they span).
fn scan(file: &mut File) -> io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let (mut count, mut valid) = (0u64, 0u64);
    while let Some(body) = read_record(&mut reader)? {
        count += 1;
        valid += RECORD_HEADER_LEN + u64::try_from(body.len()).unwrap_or(u64::MAX);
    }
    Ok((count, valid))
}

/// One record; `None` at the end of the file or at a torn / corrupt record.
fn read_record(reader: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 8];
    if !read_full(reader, &mut header)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD_LEN {
        return Ok(None);
    }
    let mut body = vec![0u8; usize::try_from(len).unwrap_or(0)];
    if !read_full(reader, &mut body)? || crc32(&body) != crc {
        return Ok(None);
    }
    Ok(Some(body))
}

/// `read_exact` that reports a short read as `false` instead of an error.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib).
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        CRC_TABLE[usize::from(crc.to_le_bytes()[0] ^ b)] ^ (crc >> 8)
    })
}

static CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n: u32 = 0;
    while n < 256 {
        let mut c = n;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n as usize] = c;
        n += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn torn_and_corrupt_records_end_the_valid_part() {
        let mut bytes = Vec::new();
        for body in [&b"first"[..], b"second"] {
            bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
            bytes.extend_from_slice(&crc32(body).to_le_bytes());
            bytes.extend_from_slice(body);
        }
        let valid = bytes.len();
        let mut reader = &bytes[..];
        assert_eq!(read_record(&mut reader).unwrap(), Some(b"first".to_vec()));
        // torn: header promising 100 bytes, 3 present
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let mut reader = &bytes[valid..];
        assert_eq!(read_record(&mut reader).unwrap(), None);
        // corrupt: CRC mismatch
        let mut corrupt = bytes[..valid].to_vec();
        *corrupt.last_mut().unwrap() ^= 0xFF;
        let mut reader = &corrupt[13..];
        assert_eq!(read_record(&mut reader).unwrap(), None);
    }
}
