//! The media engine: configuration, port pool, spare relays and session
//! count, shared by every session.

use crate::config::MediaConfig;
use crate::error::MediaError;
use crate::pool::PortPool;
use crate::relay::Spares;
use crate::session::MediaSession;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Hands out media sessions. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

/// What every session of an engine shares.
#[derive(Debug)]
pub(crate) struct EngineInner {
    pub(crate) config: MediaConfig,
    pub(crate) pool: Arc<PortPool>,
    /// Relays of ended sessions, parked for the next ones.
    pub(crate) spares: Arc<Spares>,
    sessions: AtomicUsize,
    /// The relays' own runtime (`relay_threads` > 0).
    relay: Option<RelayRuntime>,
}

/// A runtime that only relays packets: RTP does not wait behind signalling
/// work, and a packet wakes a relay thread instead of the shared workers
/// (measured in BENCHMARKS.md). One thread is a current-thread runtime
/// driven by a thread of its own (the cheapest wake-ups); more are a
/// multi-thread runtime.
#[derive(Debug)]
struct RelayRuntime {
    handle: tokio::runtime::Handle,
    /// Multi-thread: the runtime itself.
    runtime: Option<tokio::runtime::Runtime>,
    /// Current-thread: tells its thread to stop.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RelayRuntime {
    fn start(threads: usize) -> Option<RelayRuntime> {
        let started = if threads == 1 {
            Self::single()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("tandem-relay")
                .enable_all()
                .build()
                .map(|rt| RelayRuntime {
                    handle: rt.handle().clone(),
                    runtime: Some(rt),
                    stop: None,
                })
        };
        match started {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(
                    message = "Cannot start the relay runtime; relaying on the caller's.",
                    error = %e
                );
                None
            }
        }
    }

    fn single() -> std::io::Result<RelayRuntime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tandem-relay".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_background();
            })?;
        Ok(RelayRuntime {
            handle,
            runtime: None,
            stop: Some(stop),
        })
    }
}

impl Drop for RelayRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The engine may go away inside async code, where a blocking
        // shutdown is not allowed.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl EngineInner {
    /// Where relays run: the engine's relay runtime, else the caller's.
    pub(crate) fn relay_handle(&self) -> Option<tokio::runtime::Handle> {
        match &self.relay {
            Some(r) => Some(r.handle.clone()),
            None => tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// A session ended.
    pub(crate) fn session_ended(&self) {
        self.sessions.fetch_sub(1, Relaxed);
    }
}

impl MediaEngine {
    /// An engine over `config`. Nothing is bound until a session sees SDP;
    /// a configuration that cannot work shows up then as an error of
    /// [`MediaSession::rewrite_sdp`] (use [`MediaEngine::try_new`] to check
    /// it up front).
    pub fn new(config: MediaConfig) -> MediaEngine {
        let relay = match config.relay_threads {
            0 => None,
            n => RelayRuntime::start(n),
        };
        MediaEngine {
            inner: Arc::new(EngineInner {
                pool: Arc::new(PortPool::new(&config)),
                spares: Arc::new(Spares::for_engine()),
                config,
                sessions: AtomicUsize::new(0),
                relay,
            }),
        }
    }

    /// [`MediaEngine::new`] after [`MediaConfig::validate`].
    pub fn try_new(config: MediaConfig) -> Result<MediaEngine, MediaError> {
        config.validate()?;
        Ok(MediaEngine::new(config))
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// A new relay between a side A and a side B. Ports are taken when the
    /// first SDP arrives.
    pub fn session(&self) -> MediaSession {
        self.inner.sessions.fetch_add(1, Relaxed);
        MediaSession::new(Arc::clone(&self.inner))
    }

    /// RTP and RTCP ports held by live sessions (0 when no session is
    /// alive).
    pub fn ports_in_use(&self) -> usize {
        self.inner.pool.ports_in_use()
    }

    /// RTP and RTCP ports of ended sessions' relays, still bound and kept
    /// for the next sessions to take over (bounded; closed when the engine
    /// and its last session are dropped).
    pub fn ports_idle(&self) -> usize {
        self.inner.pool.ports_idle()
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        self.inner.sessions.load(Relaxed)
    }
}

impl fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaEngine")
            .field("config", &self.inner.config)
            .field("sessions", &self.sessions())
            .field("ports_in_use", &self.ports_in_use())
            .field("ports_idle", &self.ports_idle())
            .finish()
    }
}
