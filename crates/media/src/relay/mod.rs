//! The relay: one task per `m=` line, owning the line's four sockets.

mod io;
mod peer;
mod task;

pub(crate) use peer::SdpTarget;

use crate::error::MediaError;
use crate::pool::{PortLease, PortPool};
use crate::session::Side;
use crate::shared::SessionShared;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A change of what one side's SDP says, sent to the stream's task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remote {
    /// The side the SDP came from.
    pub(crate) side: Side,
    /// Where that side wants RTP.
    pub(crate) rtp: SdpTarget,
    /// Where that side wants RTCP.
    pub(crate) rtcp: SdpTarget,
    /// Whether the stream is RTP (only RTP-looking packets latch) or some
    /// other datagram protocol such as UDPTL (every packet latches).
    pub(crate) rtp_proto: bool,
}

/// A running stream: its ports and the handle on its task. Dropping it stops
/// the task (closing the sockets) and gives the ports back.
#[derive(Debug)]
pub(crate) struct Stream {
    ctl: mpsc::UnboundedSender<Remote>,
    task: JoinHandle<()>,
    /// RTP port facing A, facing B.
    ports: [u16; 2],
    _leases: [PortLease; 2],
}

impl Stream {
    /// Takes two port pairs (one facing each side) and starts the task.
    pub(crate) fn start(
        pool: &Arc<PortPool>,
        shared: &Arc<SessionShared>,
        runtime: &Handle,
    ) -> Result<Stream, MediaError> {
        let facing_a = pool.allocate()?;
        let facing_b = pool.allocate()?;
        let ports = [facing_a.port, facing_b.port];
        let _enter = runtime.enter();
        let sockets = [
            UdpSocket::from_std(facing_a.rtp)?,
            UdpSocket::from_std(facing_a.rtcp)?,
            UdpSocket::from_std(facing_b.rtp)?,
            UdpSocket::from_std(facing_b.rtcp)?,
        ];
        let (ctl, rx) = mpsc::unbounded_channel();
        let task = task::RelayTask::new(sockets, rx, Arc::clone(shared))?;
        let task = runtime.spawn(task.run());
        Ok(Stream {
            ctl,
            task,
            ports,
            _leases: [facing_a.lease, facing_b.lease],
        })
    }

    /// Tells the task what a side's latest SDP says. Ordered before any
    /// packet read after this call returns.
    pub(crate) fn set_remote(&self, remote: Remote) {
        // The task only ends when the session drops this stream.
        let _ = self.ctl.send(remote);
    }

    /// Tandem's RTP port facing `side`.
    pub(crate) fn port(&self, facing: Side) -> u16 {
        self.ports[facing.index()]
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
