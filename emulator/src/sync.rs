//! Locking as the emulator does it everywhere ([`lock`]).

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning (a panicked holder left consistent data:
/// every critical section is a few map operations).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
