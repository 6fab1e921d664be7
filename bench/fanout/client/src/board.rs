//! The shared record of what every client received. Everything runs on one
//! thread, so plain `Cell`/`RefCell` are enough.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use tokio::sync::Notify;

use crate::wire::Payload;

/// Per broadcast round: how many clients have it, when the first and the
/// N-th got it.
#[derive(Clone, Default)]
pub struct Round {
    pub got: u32,
    pub first: Option<Instant>,
    pub all: Option<Instant>,
}

#[derive(Default)]
pub struct Board {
    pub n: usize,
    // connect phase
    pub ready: Cell<usize>,
    pub gave_up: Cell<usize>,
    pub settled: Notify,
    pub first_error: RefCell<Option<String>>,
    /// Clients whose socket ended (closed by the server or an error) after they were ready.
    pub dropped: Cell<usize>,
    // rounds
    pub rounds: RefCell<Vec<Round>>,
    pub round_done: Notify,
    // sustained phase
    /// Receipts per message id.
    pub receipts: RefCell<Vec<u32>>,
    /// Messages fired so far (the next message's id).
    pub fired: Cell<usize>,
    /// Messages every client has.
    pub complete: Cell<usize>,
    pub window_moved: Notify,
    pub deliveries: Cell<u64>,
    pub last_delivery: Cell<Option<Instant>>,
    pub duplicated: Cell<u64>,
    pub reordered: Cell<u64>,
    /// Sequence numbers skipped at a client (they may still arrive later, reordered).
    pub skipped: Cell<u64>,
    /// Frames that were none of the harness's payloads (nor system frames).
    pub stray: Cell<u64>,
}

pub fn bump<T: Copy + std::ops::Add<Output = T> + From<u8>>(c: &Cell<T>) {
    c.set(c.get() + T::from(1));
}

impl Board {
    pub fn new(n: usize, total_rounds: usize, max_messages: usize) -> Board {
        Board {
            n,
            rounds: RefCell::new(vec![Round::default(); total_rounds]),
            receipts: RefCell::new(vec![0; max_messages]),
            ..Board::default()
        }
    }

    pub fn note_error(&self, e: String) {
        self.first_error.borrow_mut().get_or_insert(e);
    }

    /// One payload at one client; `last_seq[t]` is the highest sequence
    /// number this client has seen from triggerer `t`.
    pub fn receive(&self, payload: &[u8], last_seq: &mut [u64]) {
        match crate::wire::parse_payload(payload) {
            Some(Payload::Round(r)) => {
                let mut rounds = self.rounds.borrow_mut();
                let Some(round) = rounds.get_mut(r) else { return bump(&self.stray) };
                let now = Instant::now();
                round.got += 1;
                if round.got == 1 {
                    round.first = Some(now);
                }
                if round.got as usize == self.n {
                    round.all = Some(now);
                    self.round_done.notify_waiters();
                }
            }
            Some(Payload::Stream { triggerer, seq, id }) => {
                bump(&self.deliveries);
                self.last_delivery.set(Some(Instant::now()));
                match last_seq.get_mut(triggerer) {
                    Some(last) if seq == *last => bump(&self.duplicated),
                    Some(last) if seq < *last => bump(&self.reordered),
                    Some(last) => {
                        self.skipped.set(self.skipped.get() + (seq - *last - 1));
                        *last = seq;
                    }
                    None => bump(&self.stray),
                }
                let mut receipts = self.receipts.borrow_mut();
                if let Some(count) = receipts.get_mut(id) {
                    *count += 1;
                    if *count as usize == self.n {
                        bump(&self.complete);
                        self.window_moved.notify_waiters();
                    }
                }
            }
            None => bump(&self.stray),
        }
    }

    /// Messages fired but not yet at every client.
    pub fn in_flight(&self) -> usize {
        self.fired.get() - self.complete.get()
    }
}
