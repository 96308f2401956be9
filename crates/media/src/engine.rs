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
}

impl EngineInner {
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
        MediaEngine {
            inner: Arc::new(EngineInner {
                pool: Arc::new(PortPool::new(&config)),
                spares: Arc::new(Spares::for_engine()),
                config,
                sessions: AtomicUsize::new(0),
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
