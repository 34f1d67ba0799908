//! One live connection per logger serial (§5.6): a new connection for a serial cancels the old.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use deyehard_core::LoggerSerial;
use tokio_util::sync::CancellationToken;

/// Serial → (connection id, the connection's cancel handle).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    live: Mutex<HashMap<LoggerSerial, (u64, CancellationToken)>>,
}

impl Registry {
    /// Registers connection `id` for `serial`, cancelling the connection it replaces (returns
    /// whether there was one).
    pub(crate) fn claim(&self, serial: LoggerSerial, id: u64, cancel: CancellationToken) -> bool {
        let old = self.lock().insert(serial, (id, cancel));
        match old {
            Some((old_id, old_cancel)) if old_id != id => {
                old_cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Forgets `serial` if connection `id` still holds it.
    pub(crate) fn release(&self, serial: LoggerSerial, id: u64) {
        let mut live = self.lock();
        if live.get(&serial).is_some_and(|(holder, _)| *holder == id) {
            live.remove(&serial);
        }
    }

    /// Loggers with a live connection.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LoggerSerial, (u64, CancellationToken)>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_claim_cancels_the_old_connection_and_release_is_by_holder() {
        let registry = Registry::default();
        let serial = LoggerSerial::new(7);
        let (first, second) = (CancellationToken::new(), CancellationToken::new());
        assert!(!registry.claim(serial, 1, first.clone()));
        assert!(registry.claim(serial, 2, second.clone()));
        assert!(first.is_cancelled() && !second.is_cancelled());
        registry.release(serial, 1); // the replaced connection ending must not drop the new one
        assert_eq!(registry.len(), 1);
        registry.release(serial, 2);
        assert_eq!(registry.len(), 0);
    }
}
