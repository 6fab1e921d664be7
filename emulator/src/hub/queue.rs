//! A connection's send queue and the one budget of bytes it holds, kept
//! together under one lock ([`Outbox`]), and the queue's receiving end
//! ([`Queue`]) that a socket's writer, or a parked session, takes messages
//! from.
//!
//! Why not a tokio channel: a broadcast queues one message to every
//! connection, so what a message costs per connection is what fan-out
//! costs. Queueing here takes one uncontended lock (the byte budget, the
//! message count and the push in one critical section) and a wake-up only
//! when the queue was empty; an unbounded channel took four or five atomic
//! read-modify-writes, and the budget and count beside it three more. And
//! an idle connection's queue is about 100 bytes, not the 1.3 KB a channel
//! allocates up front (its first block of 32 slots and its cache-padded
//! shared state), which every connection pays.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::message::Outbound;
use crate::sync::lock;

/// A queue that held more than this many slots gives them back once it is
/// empty again, so a burst does not size an idle connection for its life.
const KEPT_SLOTS: usize = 16;

/// The shared half: queued messages, how many are counted as queued, the
/// bytes held, and the writer's wake-up.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Outbound>,
    /// Messages counted against the queue's cap: from [`Outbox::push`]
    /// until the writer gives them back ([`Outbox::give_back`]), so a
    /// message taken out and not yet written still counts.
    queued: usize,
    /// Bytes the connection holds, the queue's and the rest (see
    /// `Connection::hold`).
    held: usize,
    /// The receiving end is gone: nothing is queued any more.
    closed: bool,
}

/// Why [`Outbox::push`] queued nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Queueing would take the bytes held to this, over the budget.
    OverBudget(usize),
    /// The queue holds its cap of messages; the bytes held now.
    Full(usize),
    /// The receiving end is gone.
    Closed,
}

impl Outbox {
    /// A new queue: its shared half and its receiving end.
    pub(crate) fn new() -> (Arc<Self>, Queue) {
        let outbox = Arc::new(Self::default());
        let queue = Queue {
            outbox: outbox.clone(),
        };
        (outbox, queue)
    }

    /// Queues `message` of `cost` bytes if the budget and the cap allow.
    pub(crate) fn push(
        &self,
        message: Outbound,
        cost: usize,
        budget: usize,
        cap: usize,
    ) -> Result<(), (Refused, Outbound)> {
        let was_empty = {
            let mut state = lock(&self.state);
            if state.closed {
                return Err((Refused::Closed, message));
            }
            let held = state.held.saturating_add(cost);
            if held > budget {
                return Err((Refused::OverBudget(held), message));
            }
            if state.queued >= cap {
                return Err((Refused::Full(state.held), message));
            }
            state.held = held;
            state.queued += 1;
            let was_empty = state.items.is_empty();
            state.items.push_back(message);
            was_empty
        };
        // A queue with messages already has its writer's wake-up pending.
        if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Gives back `count` messages taken from the queue and `bytes` of the
    /// budget.
    pub(crate) fn give_back(&self, count: usize, bytes: usize) {
        let mut state = lock(&self.state);
        state.queued = state.queued.saturating_sub(count);
        state.held = state.held.saturating_sub(bytes);
    }

    /// Counts `bytes` more held, whatever the budget: what is held now.
    pub(crate) fn add(&self, bytes: usize) -> usize {
        let mut state = lock(&self.state);
        state.held = state.held.saturating_add(bytes);
        state.held
    }

    /// Counts `bytes` more held if that stays within `budget`; else
    /// `Err(what it would be)`, nothing counted.
    pub(crate) fn hold(&self, bytes: usize, budget: usize) -> Result<(), usize> {
        let mut state = lock(&self.state);
        let held = state.held.saturating_add(bytes);
        if held > budget {
            return Err(held);
        }
        state.held = held;
        Ok(())
    }

    /// Gives back `bytes` counted by [`add`](Self::add) or
    /// [`hold`](Self::hold).
    pub(crate) fn release(&self, bytes: usize) {
        let mut state = lock(&self.state);
        state.held = state.held.saturating_sub(bytes);
    }

    /// Takes the oldest queued message (only the receiving end does).
    fn pop(&self) -> Option<Outbound> {
        let mut state = lock(&self.state);
        let message = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEPT_SLOTS {
            state.items = VecDeque::new();
        }
        message
    }

    /// The bytes held now.
    pub(crate) fn held(&self) -> usize {
        lock(&self.state).held
    }

    /// The messages counted as queued now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        lock(&self.state).queued
    }
}

/// The receiving end of a connection's queue. There is one; whoever holds
/// it (a socket's writer, a parked session) takes the messages. Dropping it
/// closes the queue: later messages are refused, and what it held is given
/// back.
#[derive(Debug)]
pub(crate) struct Queue {
    outbox: Arc<Outbox>,
}

impl Queue {
    /// A queue nobody sends to.
    pub(crate) fn closed() -> Self {
        Outbox::new().1
    }

    /// The next message, if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        self.outbox.pop()
    }

    /// The next message, once one is queued. Cancel safe: a message is
    /// taken only when the future completes.
    pub(crate) async fn recv(&mut self) -> Outbound {
        // Most calls find a message: no wake-up is registered for those.
        if let Some(message) = self.outbox.pop() {
            return message;
        }
        loop {
            // Registered before the queue is looked at, so a push in
            // between is not missed.
            let outbox = &*self.outbox;
            let ready = outbox.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(message) = outbox.pop() {
                return message;
            }
            ready.await;
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let items = {
            let mut state = lock(&self.outbox.state);
            state.closed = true;
            let items = std::mem::take(&mut state.items);
            let bytes = items.iter().map(Outbound::cost).sum::<usize>();
            state.queued = state.queued.saturating_sub(items.len());
            state.held = state.held.saturating_sub(bytes);
            items
        };
        // Dropped outside the lock: the last reference to an envelope may
        // go with them.
        drop(items);
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_refused_over_the_budget_or_the_cap_and_nothing_is_counted() {
        let (outbox, mut queue) = Outbox::new();
        assert!(outbox.push(Outbound::Pong, 10, 25, 2).is_ok());
        assert!(outbox.push(Outbound::Pong, 10, 25, 2).is_ok());
        let refused = outbox.push(Outbound::Pong, 10, 25, 2).map_err(|e| e.0);
        assert_eq!(refused, Err(Refused::OverBudget(30)));
        let refused = outbox.push(Outbound::Pong, 1, 25, 2).map_err(|e| e.0);
        assert_eq!(refused, Err(Refused::Full(20)));
        assert_eq!((outbox.queued(), outbox.held()), (2, 20));
        // Taken out, a message still counts until it is given back.
        assert!(queue.try_recv().is_some());
        assert_eq!(outbox.queued(), 2);
        outbox.give_back(1, 10);
        assert_eq!((outbox.queued(), outbox.held()), (1, 10));
    }

    #[test]
    fn dropping_the_receiving_end_closes_the_queue_and_gives_back_what_it_held() {
        let (outbox, queue) = Outbox::new();
        let cost = Outbound::Pong.cost();
        assert!(outbox.push(Outbound::Pong, cost, 1000, 10).is_ok());
        outbox.add(5);
        drop(queue);
        assert_eq!((outbox.queued(), outbox.held()), (0, 5));
        let refused = outbox.push(Outbound::Pong, cost, 1000, 10).map_err(|e| e.0);
        assert_eq!(refused, Err(Refused::Closed));
        assert_eq!(outbox.held(), 5);
    }

    #[tokio::test]
    async fn recv_wakes_for_a_message_pushed_while_it_waits() {
        let (outbox, mut queue) = Outbox::new();
        let waiting = tokio::spawn(async move {
            let first = queue.recv().await;
            let second = queue.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        assert!(outbox.push(Outbound::Pong, 1, 100, 10).is_ok());
        assert!(outbox.push(Outbound::KeepAlive, 1, 100, 10).is_ok());
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(matches!(
            (first, second),
            (Outbound::Pong, Outbound::KeepAlive)
        ));
    }

    #[test]
    fn an_emptied_queue_gives_back_the_room_a_burst_grew_it_to() {
        let (outbox, mut queue) = Outbox::new();
        for _ in 0..100 {
            assert!(outbox.push(Outbound::Pong, 1, 1000, 1000).is_ok());
        }
        while queue.try_recv().is_some() {}
        assert_eq!(lock(&outbox.state).items.capacity(), 0);
    }
}
