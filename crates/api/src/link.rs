//! The channel between a dial plan and its call: commands go to the call's
//! actor in order; a dial waits for its result on a oneshot.

use crate::command::{Command, DialRequest, DialResult};
use tokio::sync::{mpsc, oneshot};

/// The call's end of the link: commands in issue order.
///
/// Commands travel boxed. The channel allocates its slots in blocks of 32.
/// A block of 32 whole commands (~90 bytes each) is a ~3 KB allocation per
/// call, and an allocation that large makes glibc consolidate its fast
/// bins every time, which showed up as the largest part of a dial plan's
/// cost per call (BENCHMARKS.md). A block of 32 boxes is small.
#[derive(Debug)]
pub struct CommandReceiver {
    rx: mpsc::UnboundedReceiver<Box<Command>>,
}

impl CommandReceiver {
    /// The next command; `None` once every link is gone.
    pub async fn recv(&mut self) -> Option<Command> {
        self.rx.recv().await.map(|c| *c)
    }
}

/// The engine's end of the link to one call.
#[derive(Debug, Clone)]
pub struct CallLink {
    tx: mpsc::UnboundedSender<Box<Command>>,
}

impl CallLink {
    /// A new link: the engine keeps the [`CallLink`], the call the receiver.
    pub fn pair() -> (CallLink, CommandReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (CallLink { tx }, CommandReceiver { rx })
    }

    /// Sends a command; false once the call is gone.
    pub fn send(&self, command: Command) -> bool {
        self.tx.send(Box::new(command)).is_ok()
    }

    /// Dials and waits for the result. A call that is gone answers 487.
    pub async fn dial(&self, request: DialRequest) -> DialResult {
        let (reply, result) = oneshot::channel();
        if !self.send(Command::Dial { request, reply }) {
            return DialResult::failed(487, "Request Terminated");
        }
        result
            .await
            .unwrap_or_else(|_| DialResult::failed(487, "Request Terminated"))
    }

    /// Resolves when the call has ended (its receiver dropped).
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// True once the call has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
