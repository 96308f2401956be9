//! `--bare`: the yardstick for the relay. A bare forwarder in the child
//! process instead of Tandem's relay: one thread, one level-triggered epoll
//! set over every socket, `recvmmsg` up to 32 datagrams and `sendmmsg` them
//! out of the opposite socket to the fixed phone address. No Tokio, no
//! latching, no SDP, no statistics per session: the least a user-space
//! relay can do per packet, so the relay's CPU can be stated as a multiple
//! of it on the same machine and load.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg};
use std::io::{BufRead, IoSlice, IoSliceMut, Write};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

const BATCH: usize = 32;
const SLOT: usize = 2_048;

/// Runs the bare forwarder for `sessions` sessions (four sockets each from
/// `port_min` on: RTP and RTCP facing A, then facing B) between the phones
/// at `phone_a` and `phone_b`; speaks the child protocol of `rtpload`
/// (ports, `ready`, `stats` lines) and ends when stdin closes.
pub(crate) fn run(
    sessions: u16,
    port_min: u16,
    phone_a: SocketAddr,
    phone_b: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    let (SocketAddr::V4(phone_a), SocketAddr::V4(phone_b)) = (phone_a, phone_b) else {
        return Err("the bare forwarder is IPv4 only".into());
    };
    let mut sockets = Vec::new();
    for i in 0..u32::from(sessions) * 4 {
        let port = u16::try_from(u32::from(port_min) + i)?;
        let s = UdpSocket::bind(("127.0.0.1", port))?;
        s.set_nonblocking(true)?;
        let _ = socket2::SockRef::from(&s).set_recv_buffer_size(1 << 20);
        sockets.push(s);
    }
    // Socket i faces A when i % 4 < 2: what it receives goes to B.
    let dest = |i: usize| -> SockaddrIn {
        let phone = if i % 4 < 2 { phone_b } else { phone_a };
        let port = phone.port() + u16::from(i % 2 == 1);
        SockaddrIn::from(SocketAddrV4::new(*phone.ip(), port))
    };
    let epoll = Epoll::new(EpollCreateFlags::empty())?;
    for (i, s) in sockets.iter().enumerate() {
        epoll.add(s, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))?;
    }
    let mut out = std::io::stdout().lock();
    for s in 0..usize::from(sessions) {
        writeln!(
            out,
            "{} {}",
            sockets[4 * s].local_addr()?.port(),
            sockets[4 * s + 2].local_addr()?.port()
        )?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    let stop = Arc::new(AtomicBool::new(false));
    let relayed = Arc::new(AtomicU64::new(0));
    {
        let (stop, relayed) = (Arc::clone(&stop), Arc::clone(&relayed));
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "stats" {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{} 0", relayed.load(Relaxed));
                    let _ = out.flush();
                }
            }
            stop.store(true, Relaxed);
        });
    }

    let mut buf = vec![0u8; BATCH * SLOT];
    let mut rx: MultiHeaders<SockaddrIn> = MultiHeaders::preallocate(BATCH, None);
    let mut tx: MultiHeaders<SockaddrIn> = MultiHeaders::preallocate(BATCH, None);
    let mut lens = [0usize; BATCH];
    let mut events = vec![EpollEvent::empty(); 256];
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    while !stop.load(Relaxed) {
        let n = epoll.wait(&mut events, EpollTimeout::from(100u16))?;
        for ev in &events[..n] {
            let i = ev.data() as usize;
            let (from, to) = (&sockets[i], &sockets[i ^ 2]);
            let to_addr = [Some(dest(i)); BATCH];
            loop {
                let got = {
                    let mut slots = buf.chunks_exact_mut(SLOT);
                    let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                        [IoSliceMut::new(slots.next().unwrap_or_default())]
                    });
                    match recvmmsg(
                        from.as_raw_fd(),
                        &mut rx,
                        iovs.iter_mut(),
                        MsgFlags::MSG_DONTWAIT,
                        None,
                    ) {
                        Ok(res) => {
                            let mut k = 0;
                            for (len, msg) in lens.iter_mut().zip(res) {
                                *len = msg.bytes;
                                k += 1;
                            }
                            k
                        }
                        Err(_) => 0,
                    }
                };
                if got == 0 {
                    break;
                }
                let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|k| {
                    let start = k * SLOT;
                    [IoSlice::new(
                        buf.get(start..start + lens[k].min(SLOT))
                            .unwrap_or_default(),
                    )]
                });
                // The count is not read back from the results (see the
                // relay's io module): a full loopback socket drops, and the
                // generator counts what arrives.
                if sendmmsg(
                    to.as_raw_fd(),
                    &mut tx,
                    &iovs[..got],
                    &to_addr[..got],
                    no_cmsgs,
                    MsgFlags::empty(),
                )
                .is_ok()
                {
                    relayed.fetch_add(got as u64, Relaxed);
                }
                if got < BATCH {
                    break;
                }
            }
        }
    }
    Ok(())
}
