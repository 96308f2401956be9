//! The relay: one task per `m=` line, owning the line's four sockets. When
//! the session ends, the task and its sockets are parked among the spares
//! for a later session instead of being torn down.

mod io;
mod mailbox;
mod peer;
mod spare;
mod task;

pub(crate) use peer::SdpTarget;
pub(crate) use spare::Spares;

use crate::error::MediaError;
use crate::pool::{PortLease, PortPool};
use crate::session::Side;
use crate::shared::SessionShared;
use mailbox::Mailbox;
use spare::Age;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::runtime::{self, Handle};
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

/// What a stream's task is told, in order (through its [`Mailbox`]).
#[derive(Debug)]
pub(crate) enum Ctl {
    /// Serve a new session (whose taker has just emptied the sockets'
    /// receive queues): forget the previous session's peers and count into
    /// these counters.
    Activate(Arc<SessionShared>),
    /// What a side's latest SDP says.
    Remote(Remote),
    /// The session ended: relay nothing, latch nothing, throw away what
    /// arrives.
    Park,
}

/// Datagrams thrown away per socket at most when a session takes a spare
/// over (the parked task reads and drops what arrives, so little is ever
/// queued; under a flood, what is left is read as any stray datagram).
const DRAIN: usize = 512;

/// What a relay task and its handle share, in one allocation (the task
/// reads both on every wake-up).
#[derive(Debug)]
pub(crate) struct Ends {
    /// RTP facing A, RTCP facing A, RTP facing B, RTCP facing B. The task
    /// reads them; the handle only empties their queues on take-over.
    sockets: [UdpSocket; 4],
    /// The task's control messages.
    mailbox: Mailbox,
}

/// A running relay task with its ports and its mailbox. Dropping it stops
/// the task (closing the sockets) and gives the ports back.
#[derive(Debug)]
pub(crate) struct Relay {
    ends: Arc<Ends>,
    task: JoinHandle<()>,
    /// The runtime the task runs on.
    runtime: runtime::Id,
    /// RTP port facing A, facing B.
    ports: [u16; 2],
    leases: [PortLease; 2],
}

impl Relay {
    /// Binds two fresh port pairs (one facing each side) and starts a task
    /// serving `shared` on them.
    fn spawn(
        pool: &Arc<PortPool>,
        shared: &Arc<SessionShared>,
        runtime: &Handle,
    ) -> Result<Relay, MediaError> {
        let facing_a = pool.allocate()?;
        let facing_b = pool.allocate()?;
        let ports = [facing_a.port, facing_b.port];
        let _enter = runtime.enter();
        let ends = Arc::new(Ends {
            sockets: [
                UdpSocket::from_std(facing_a.rtp)?,
                UdpSocket::from_std(facing_a.rtcp)?,
                UdpSocket::from_std(facing_b.rtp)?,
                UdpSocket::from_std(facing_b.rtcp)?,
            ],
            mailbox: Mailbox::default(),
        });
        let task = task::RelayTask::new(Arc::clone(&ends), Arc::clone(shared))?;
        let task = runtime.spawn(task.run());
        Ok(Relay {
            ends,
            task,
            runtime: runtime.id(),
            ports,
            leases: [facing_a.lease, facing_b.lease],
        })
    }

    /// Whether the task still runs (a runtime that shut down ended it).
    fn alive(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops relaying for the ended session; the ports stay bound, idle.
    fn park(&self) {
        self.ends.mailbox.post(Ctl::Park);
        for lease in &self.leases {
            lease.park();
        }
    }

    /// Serves `shared` from now on. False if the task is gone.
    ///
    /// Whatever the sockets hold when a session takes the relay over was
    /// sent to the previous call (the new session's SDP has not left Tandem
    /// yet): it is thrown away here, before this returns, so it can neither
    /// be relayed nor latch. Then the task is told; it reads its mailbox
    /// before its sockets.
    fn activate(&self, shared: &Arc<SessionShared>) -> bool {
        let thrown: u64 = self
            .ends
            .sockets
            .iter()
            .map(|s| io::discard(s, DRAIN))
            .sum();
        if thrown > 0 {
            tracing::debug!(
                message = "Late media packets of an ended call discarded.",
                packets = thrown
            );
        }
        if !self.alive() {
            return false;
        }
        self.ends.mailbox.post(Ctl::Activate(Arc::clone(shared)));
        for lease in &self.leases {
            lease.unpark();
        }
        true
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A session's stream: a relay serving it. Dropping it parks the relay
/// among the spares (or stops it, when there is no room).
#[derive(Debug)]
pub(crate) struct Stream {
    relay: Option<Relay>,
    spares: Arc<Spares>,
}

impl Stream {
    /// A relay for `shared`: a spare parked long enough, else one on fresh
    /// ports, else (the range is used up, or binding fails) any spare.
    pub(crate) fn start(
        pool: &Arc<PortPool>,
        spares: &Arc<Spares>,
        shared: &Arc<SessionShared>,
        runtime: &Handle,
    ) -> Result<Stream, MediaError> {
        let id = runtime.id();
        let stream = |relay| Stream {
            relay: Some(relay),
            spares: Arc::clone(spares),
        };
        while let Some(relay) = spares.take(id, Age::Quarantined) {
            if relay.activate(shared) {
                return Ok(stream(relay));
            }
        }
        match Relay::spawn(pool, shared, runtime) {
            Ok(relay) => Ok(stream(relay)),
            Err(e) => {
                while let Some(relay) = spares.take(id, Age::Any) {
                    if relay.activate(shared) {
                        return Ok(stream(relay));
                    }
                }
                Err(e)
            }
        }
    }

    /// Tells the task what a side's latest SDP says. Ordered before any
    /// packet read after this call returns.
    pub(crate) fn set_remote(&self, remote: Remote) {
        if let Some(relay) = &self.relay {
            relay.ends.mailbox.post(Ctl::Remote(remote));
        }
    }

    /// Tandem's RTP port facing `side`.
    pub(crate) fn port(&self, facing: Side) -> u16 {
        self.relay
            .as_ref()
            .map_or(0, |relay| relay.ports[facing.index()])
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.park();
            self.spares.park(relay);
        }
    }
}
