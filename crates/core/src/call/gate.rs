//! Polls a future only when it asked to be polled. A call's task wakes for
//! every SIP message and timer, and `select!` polls every branch on each
//! wake-up. Polling a script's run means resuming its Lua coroutine (or
//! re-entering whatever the engine does), so the run is only polled when
//! its own waker fired: once per command result, not once per SIP event.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// A future behind a gate that opens when the future's waker is woken.
pub(crate) struct WakeGate<F> {
    inner: F,
    gate: Arc<Gate>,
}

/// The gate: set when the inner future was woken, and the task to wake.
/// One per call: the lock is never shared across calls.
struct Gate {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = task.as_ref() {
            waker.wake_by_ref();
        }
    }
}

impl<F> WakeGate<F> {
    /// `inner`, polled on the first poll and then only after it was woken.
    pub(crate) fn new(inner: F) -> WakeGate<F> {
        WakeGate {
            inner,
            gate: Arc::new(Gate {
                woken: AtomicBool::new(true),
                task: Mutex::new(None),
            }),
        }
    }

    /// The future itself (to run it elsewhere).
    pub(crate) fn into_inner(self) -> F {
        self.inner
    }
}

impl<F: Future + Unpin> Future for WakeGate<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            // Remember the task first: a wake-up after this reaches it,
            // one before is seen in the flag below.
            let mut task = this
                .gate
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        if !this.gate.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(this.gate.clone());
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready after `ready_after` wake-ups of its own.
    struct Counting {
        polls: Arc<AtomicUsize>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Counting {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if n >= 2 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[tokio::test]
    async fn polled_only_when_woken() {
        let polls = Arc::new(AtomicUsize::new(0));
        let inner_waker = Arc::new(Mutex::new(None));
        let mut gated = WakeGate::new(Counting {
            polls: polls.clone(),
            waker: inner_waker.clone(),
        });
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        // The task wakes for other reasons: the inner future is left alone.
        for _ in 0..10 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Its own waker fires: polled once more, and done.
        let w = inner_waker.lock().unwrap().take().unwrap();
        w.wake();
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}
