//! Locking as the emulator does it everywhere ([`lock`]), and polling only
//! what woke a task ([`Gate`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Locks a mutex, ignoring poisoning (a panicked holder left consistent data:
/// every critical section is a few map operations).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Polls what it guards only once that has woken the task since it last
/// answered `Pending`: a task that waits on several things (a socket's read
/// half, a kill signal, its queue) and wakes mostly for one of them does
/// not poll the others on every wake-up for nothing.
///
/// What it guards is polled with the gate's own waker, which notes the
/// wake-up and wakes the task. About 60 bytes on the heap.
///
/// ```ignore
/// let gate = Gate::new();
/// tokio::select! {
///     frame = std::future::poll_fn(|cx| gate.poll(cx, |cx| stream.poll_next_unpin(cx))) => {}
///     message = queue.recv() => {}
/// }
/// ```
#[derive(Debug)]
pub(crate) struct Gate {
    state: Arc<GateState>,
    waker: Waker,
}

#[derive(Debug, Default)]
struct GateState {
    /// Woken since the guarded thing last answered `Pending` (or never
    /// polled).
    woken: AtomicBool,
    /// The task polling the gate.
    task: AtomicWaker,
}

impl Wake for GateState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Gate {
    /// A gate that polls at its first poll.
    pub(crate) fn new() -> Self {
        let state = Arc::new(GateState {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(state.clone());
        Self { state, waker }
    }

    /// `Pending` without polling `poll` unless what it polls woke the
    /// task; else `poll`, with the gate's waker.
    pub(crate) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.state.task.register(cx.waker());
        if !self.state.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        match poll(&mut Context::from_waker(&self.waker)) {
            Poll::Ready(value) => {
                // It may have more at once (a buffered frame): poll it
                // again next time.
                self.state.woken.store(true, Ordering::Release);
                Poll::Ready(value)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn a_gate_polls_only_after_what_it_guards_woke_the_task() {
        let notify = Arc::new(tokio::sync::Notify::new());
        let notified = notify.notified();
        tokio::pin!(notified);
        let gate = Gate::new();
        let polls = std::cell::Cell::new(0);
        let poll_once = |gate: &Gate, notified: std::pin::Pin<&mut _>| {
            let mut cx = Context::from_waker(Waker::noop());
            gate.poll(&mut cx, |cx| {
                polls.set(polls.get() + 1);
                std::future::Future::poll(notified, cx)
            })
        };
        assert!(poll_once(&gate, notified.as_mut()).is_pending());
        assert!(poll_once(&gate, notified.as_mut()).is_pending());
        assert_eq!(polls.get(), 1, "not polled again before it wakes");
        notify.notify_waiters();
        assert!(poll_once(&gate, notified.as_mut()).is_ready());
        assert_eq!(polls.get(), 2, "polled once woken");
        // And it wakes the task that polls the gate.
        let notify2 = Arc::new(tokio::sync::Notify::new());
        let gate = Gate::new();
        let waiter = {
            let notify2 = notify2.clone();
            tokio::spawn(async move {
                let notified = notify2.notified();
                tokio::pin!(notified);
                poll_fn(|cx| gate.poll(cx, |cx| std::future::Future::poll(notified.as_mut(), cx)))
                    .await;
            })
        };
        tokio::task::yield_now().await;
        notify2.notify_one();
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .is_ok(),
            "the task is woken through the gate"
        );
    }
}
