//! A relay task's mailbox: control messages (a new session, a side's SDP,
//! parking) wait here for the task's next wake-up instead of causing one.
//!
//! The task wakes up when a datagram arrives and empties its mailbox before
//! it reads any socket, so every datagram read after a message was posted
//! is handled as the message says, and setting up or ending a call costs no
//! wake-up of a relay task (nor of a worker thread to run it). Posting
//! takes a lock that only the task, when the mailbox is not empty, also
//! takes; the task's check of an empty mailbox is one atomic load.

use super::Ctl;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Messages for one relay task, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    pending: AtomicBool,
    queue: Mutex<VecDeque<Ctl>>,
}

impl Mailbox {
    /// Queues `msg` for the task.
    pub(crate) fn post(&self, msg: Ctl) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push_back(msg);
        self.pending.store(true, Ordering::Release);
    }

    /// Hands every queued message to `f`, oldest first.
    pub(crate) fn drain(&self, mut f: impl FnMut(Ctl)) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.pending.store(false, Ordering::Relaxed);
        while let Some(msg) = queue.pop_front() {
            f(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_order_once() {
        let mailbox = Mailbox::default();
        let mut seen = Vec::new();
        mailbox.drain(|m| seen.push(format!("{m:?}")));
        assert!(seen.is_empty());
        mailbox.post(Ctl::Park);
        mailbox.post(Ctl::Activate(std::sync::Arc::new(
            crate::shared::SessionShared::new(),
        )));
        mailbox.drain(|m| seen.push(format!("{m:?}")));
        assert_eq!(seen.len(), 2);
        assert!(seen[0].starts_with("Park") && seen[1].starts_with("Activate"));
        mailbox.drain(|_| panic!("drained twice"));
    }
}
