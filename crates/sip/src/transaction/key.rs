//! Transaction identity (RFC 3261 §17.1.3 and §17.2.3), with the RFC 2543
//! fallback for requests whose branch lacks the magic cookie.

use crate::message::{Message, Method};
use bytes::Bytes;

/// Which side of a transaction this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// The key that matches messages to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// RFC 3261: branch, sent-by (servers) and method (ACK counts as INVITE).
    Branch {
        /// Client or server.
        role: Role,
        /// The branch parameter of the top Via.
        branch: Bytes,
        /// Sent-by host of the top Via (servers only; empty for clients).
        host: Bytes,
        /// Sent-by port of the top Via (servers only; 0 for clients).
        port: u16,
        /// The method, with ACK mapped to INVITE.
        method: Method,
    },
    /// RFC 2543 (§17.2.3 last paragraph): Call-ID, CSeq number, From tag,
    /// top Via and method.
    Legacy {
        /// Call-ID.
        call_id: Bytes,
        /// CSeq number.
        cseq: u32,
        /// From tag.
        from_tag: Bytes,
        /// The whole top Via value.
        via: Bytes,
        /// The method, with ACK mapped to INVITE.
        method: Method,
    },
}

fn matching_method(m: &Method) -> Method {
    if *m == Method::Ack {
        Method::Invite
    } else {
        m.clone()
    }
}

impl TxKey {
    /// The server transaction key of a received request.
    pub fn server(req: &Message) -> Option<TxKey> {
        let method = matching_method(req.method()?);
        TxKey::server_with_method(req, method)
    }

    /// The key of the INVITE server transaction a CANCEL refers to (§9.2).
    pub fn cancelled_invite(cancel: &Message) -> Option<TxKey> {
        TxKey::server_with_method(cancel, Method::Invite)
    }

    fn server_with_method(req: &Message, method: Method) -> Option<TxKey> {
        let via = req.top_via()?;
        if via.is_rfc3261_branch() {
            let port = via.port.unwrap_or_else(|| via.default_port());
            return Some(TxKey::Branch {
                role: Role::Server,
                branch: via.branch()?,
                host: via.host,
                port,
                method,
            });
        }
        Some(TxKey::Legacy {
            call_id: req.call_id()?.clone(),
            cseq: req.cseq()?.seq,
            from_tag: req.from_tag().unwrap_or_default(),
            via: req.headers.get(&crate::message::HeaderName::Via)?.clone(),
            method,
        })
    }

    /// The client transaction key of a received response (§17.1.3).
    pub fn client_of_response(resp: &Message) -> Option<TxKey> {
        let via = resp.top_via()?;
        Some(TxKey::client(via.branch()?, resp.cseq()?.method))
    }

    /// The client transaction key for a branch and method.
    pub fn client(branch: Bytes, method: Method) -> TxKey {
        TxKey::Branch {
            role: Role::Client,
            branch,
            host: Bytes::new(),
            port: 0,
            method: matching_method(&method),
        }
    }

    /// A copy that shares nothing with the message it came from, so that a
    /// long-lived transaction does not keep the whole receive buffer alive.
    pub fn detached(&self) -> TxKey {
        let own = |b: &Bytes| Bytes::copy_from_slice(b);
        let own_method = |m: &Method| match m {
            Method::Other(b) => Method::Other(own(b)),
            m => m.clone(),
        };
        match self {
            TxKey::Branch {
                role,
                branch,
                host,
                port,
                method,
            } => TxKey::Branch {
                role: *role,
                branch: own(branch),
                host: own(host),
                port: *port,
                method: own_method(method),
            },
            TxKey::Legacy {
                call_id,
                cseq,
                from_tag,
                via,
                method,
            } => TxKey::Legacy {
                call_id: own(call_id),
                cseq: *cseq,
                from_tag: own(from_tag),
                via: own(via),
                method: own_method(method),
            },
        }
    }

    /// The method the key matches.
    pub fn method(&self) -> &Method {
        match self {
            TxKey::Branch { method, .. } | TxKey::Legacy { method, .. } => method,
        }
    }
}
