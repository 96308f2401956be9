//! SIP request methods (RFC 3261 §7.1 and extensions). Methods are
//! case-sensitive; any other `token` is kept as [`Method::Other`].

use bytes::Bytes;
use std::fmt;

/// A SIP request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// INFO (RFC 6086).
    Info,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// MESSAGE (RFC 3428).
    Message,
    /// NOTIFY (RFC 6665).
    Notify,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// REFER (RFC 3515).
    Refer,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other method token, exactly as received.
    Other(Bytes),
}

impl Method {
    /// Maps a method token to a method, keeping unknown ones as `Other`.
    pub fn from_token(token: &[u8]) -> Method {
        Method::from_token_known(token)
            .unwrap_or_else(|| Method::Other(Bytes::copy_from_slice(token)))
    }

    /// Like [`Method::from_token`] but keeps `Other` as a slice of `src`.
    pub(crate) fn from_shared(src: &Bytes, token: &[u8]) -> Method {
        match Method::from_token_known(token) {
            Some(m) => m,
            None => Method::Other(src.slice_ref(token)),
        }
    }

    fn from_token_known(token: &[u8]) -> Option<Method> {
        Some(match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"INFO" => Method::Info,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"MESSAGE" => Method::Message,
            b"NOTIFY" => Method::Notify,
            b"SUBSCRIBE" => Method::Subscribe,
            b"REFER" => Method::Refer,
            b"PUBLISH" => Method::Publish,
            _ => return None,
        })
    }

    /// The method token as it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Options => b"OPTIONS",
            Method::Register => b"REGISTER",
            Method::Info => b"INFO",
            Method::Update => b"UPDATE",
            Method::Prack => b"PRACK",
            Method::Message => b"MESSAGE",
            Method::Notify => b"NOTIFY",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Refer => b"REFER",
            Method::Publish => b"PUBLISH",
            Method::Other(b) => b,
        }
    }

    /// True for methods other than those listed above.
    pub fn is_other(&self) -> bool {
        matches!(self, Method::Other(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<rsip::Method> for Method {
    fn from(m: rsip::Method) -> Method {
        Method::from_token(m.to_string().as_bytes())
    }
}

impl TryFrom<&Method> for rsip::Method {
    type Error = rsip::Error;
    /// rsip knows only a fixed list of methods: `Other` fails.
    fn try_from(m: &Method) -> Result<rsip::Method, rsip::Error> {
        std::str::from_utf8(m.as_bytes())
            .map_err(|e| rsip::Error::ParseError(e.to_string()))?
            .parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::from_token(b"INVITE"), Method::Invite);
        assert!(Method::from_token(b"invite").is_other());
    }

    #[test]
    fn unknown_methods_survive_where_rsip_fails() {
        // rsip 0.4 cannot represent an extension method at all.
        assert!("NEWMETHOD".parse::<rsip::Method>().is_err());
        let m = Method::from_token(b"NEWMETHOD");
        assert_eq!(m.as_bytes(), b"NEWMETHOD");
        assert!(rsip::Method::try_from(&m).is_err());
        assert_eq!(
            rsip::Method::try_from(&Method::Prack).ok(),
            Some(rsip::Method::PRack)
        );
    }
}
