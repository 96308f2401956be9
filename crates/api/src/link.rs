//! The channel between a dial plan and its call: commands go to the call's
//! actor in order; a dial waits for its result on a oneshot.
//!
//! One small queue per call under a lock of its own (never shared across
//! calls): a call gets a handful of commands, and a general channel cost
//! more in allocations than it carried — its shared block and one box per
//! command, freed again a moment later (BENCHMARKS.md, "Lua dial plans").

use crate::command::{Command, DialRequest, DialResult};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::sync::oneshot;

/// Commands most calls get (a few edits, a dial, done): room for them
/// from the start.
const TYPICAL_COMMANDS: usize = 4;

/// What both ends share.
#[derive(Debug)]
struct Queue {
    commands: VecDeque<Command>,
    /// The receiver, waiting for a command.
    waker: Option<Waker>,
    /// Live [`CallLink`]s; none left ends the receiver's stream.
    links: usize,
    /// False once the receiver (the call) is gone.
    open: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Commands in the queue, written under its lock: the call polls for
    /// commands on every turn of its loop, and most turns find none, which
    /// this says without taking the lock.
    queued: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next command, under the lock (keeps `queued` up to date).
    fn pop(&self, q: &mut Queue) -> Option<Command> {
        let c = q.commands.pop_front()?;
        self.queued.store(q.commands.len(), Ordering::Release);
        Some(c)
    }
}

/// The call's end of the link: commands in issue order.
#[derive(Debug)]
pub struct CommandReceiver {
    shared: Arc<Shared>,
}

impl CommandReceiver {
    /// The next command; `None` once every link is gone.
    pub async fn recv(&mut self) -> Option<Command> {
        poll_fn(|cx| Pin::new(&mut *self).poll_recv(cx)).await
    }

    /// The next command if one is queued now.
    pub fn try_recv(&mut self) -> Option<Command> {
        if self.shared.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.shared.lock();
        self.shared.pop(&mut q)
    }

    /// Polls for the next command: `Ready(None)` once every link is gone.
    pub fn poll_recv(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        let mut q = self.shared.lock();
        if let Some(c) = self.shared.pop(&mut q) {
            return Poll::Ready(Some(c));
        }
        if q.links == 0 {
            return Poll::Ready(None);
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        let pending = {
            let mut q = self.shared.lock();
            q.open = false;
            std::mem::take(&mut q.commands)
        };
        // Dropped outside the lock: a dial's reply goes with it (487).
        drop(pending);
    }
}

/// A dial sent to its call: resolves to the dial's result, or 487 once
/// the call is gone.
#[derive(Debug)]
pub struct PendingDial {
    result: oneshot::Receiver<DialResult>,
}

impl Future for PendingDial {
    type Output = DialResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DialResult> {
        Pin::new(&mut self.result)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| DialResult::failed(487, "Request Terminated")))
    }
}

/// The engine's end of the link to one call.
#[derive(Debug)]
pub struct CallLink {
    shared: Arc<Shared>,
}

impl Clone for CallLink {
    fn clone(&self) -> CallLink {
        self.shared.lock().links += 1;
        CallLink {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for CallLink {
    fn drop(&mut self) {
        let waker = {
            let mut q = self.shared.lock();
            q.links -= 1;
            match q.links {
                0 => q.waker.take(),
                _ => None,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl CallLink {
    /// A new link: the engine keeps the [`CallLink`], the call the receiver.
    pub fn pair() -> (CallLink, CommandReceiver) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                commands: VecDeque::with_capacity(TYPICAL_COMMANDS),
                waker: None,
                links: 1,
                open: true,
            }),
            queued: AtomicUsize::new(0),
        });
        (
            CallLink {
                shared: shared.clone(),
            },
            CommandReceiver { shared },
        )
    }

    /// Sends a command; false once the call is gone.
    pub fn send(&self, command: Command) -> bool {
        let waker = {
            let mut q = self.shared.lock();
            if !q.open {
                drop(q);
                // Dropped outside the lock (a dial's reply answers 487).
                drop(command);
                return false;
            }
            q.commands.push_back(command);
            self.shared
                .queued
                .store(q.commands.len(), Ordering::Release);
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Dials and waits for the result. A call that is gone answers 487.
    pub async fn dial(&self, request: DialRequest) -> DialResult {
        self.start_dial(request).await
    }

    /// Sends a dial now; its result comes later (487 if the call is gone).
    pub fn start_dial(&self, request: DialRequest) -> PendingDial {
        let (reply, result) = oneshot::channel();
        // A call that is gone drops the command, and with it the reply.
        self.send(Command::Dial { request, reply });
        PendingDial { result }
    }

    /// True once the call has ended.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_arrive_in_order_and_the_stream_ends_with_the_links() {
        let (link, mut rx) = CallLink::pair();
        let other = link.clone();
        assert!(link.send(Command::Hangup));
        assert!(other.send(Command::Challenge));
        assert!(matches!(rx.recv().await, Some(Command::Hangup)));
        assert!(matches!(rx.recv().await, Some(Command::Challenge)));
        let waiting = tokio::spawn(async move { rx.recv().await.is_none() });
        tokio::task::yield_now().await;
        drop(link);
        drop(other);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn try_recv_sees_what_was_sent_and_what_recv_took() {
        let (link, mut rx) = CallLink::pair();
        assert!(rx.try_recv().is_none());
        link.send(Command::Hangup);
        link.send(Command::Challenge);
        // `recv` takes one; `try_recv` still sees the other, then none.
        assert!(matches!(rx.recv().await, Some(Command::Hangup)));
        assert!(matches!(rx.try_recv(), Some(Command::Challenge)));
        assert!(rx.try_recv().is_none());
        link.send(Command::Hangup);
        assert!(matches!(rx.try_recv(), Some(Command::Hangup)));
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_gone_call_refuses_commands_and_fails_dials() {
        let (link, rx) = CallLink::pair();
        let pending = link.start_dial(DialRequest::default());
        assert!(!link.is_closed());
        drop(rx);
        assert!(link.is_closed());
        assert!(!link.send(Command::Hangup));
        assert_eq!(pending.await.code, 487);
        assert_eq!(link.dial(DialRequest::default()).await.code, 487);
    }
}
