//! Why a REGISTER failed, and the response that says so.

use crate::store::StoreError;
use sip::message::HeaderName;

/// A REGISTER the registrar refuses; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A non-zero expiration below the minimum (423 + `Min-Expires`).
    #[error("expiration interval below {min} seconds")]
    IntervalTooBrief {
        /// The minimum interval the registrar accepts.
        min: u32,
    },
    /// A Contact that is not a SIP URI or has malformed parameters (400).
    #[error("bad contact: {0}")]
    BadContact(String),
    /// `Contact: *` with other contacts or without `Expires: 0` (400).
    #[error("Contact: * must be alone and come with Expires: 0")]
    BadStar,
    /// The same Call-ID as a stored binding with a CSeq not higher (500,
    /// RFC 3261 §10.3 step 7).
    #[error("CSeq not higher than the stored one for the same Call-ID")]
    OutOfOrder,
    /// The AOR would hold more bindings than allowed (403).
    #[error("too many contacts")]
    TooManyContacts,
    /// A mandatory header (To, its user part, Call-ID, CSeq) is missing or
    /// malformed (400).
    #[error("missing or malformed {0}")]
    Missing(&'static str),
    /// The location store refused the write (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegisterError {
    /// The response status code.
    pub fn code(&self) -> u16 {
        match self {
            RegisterError::IntervalTooBrief { .. } => 423,
            RegisterError::BadContact(_) | RegisterError::BadStar | RegisterError::Missing(_) => {
                400
            }
            RegisterError::OutOfOrder | RegisterError::Store(_) => 500,
            RegisterError::TooManyContacts => 403,
        }
    }

    /// The response reason phrase.
    pub fn reason(&self) -> &'static str {
        match self {
            RegisterError::IntervalTooBrief { .. } => "Interval Too Brief",
            RegisterError::BadContact(_) => "Bad Contact",
            RegisterError::BadStar => "Bad Request",
            RegisterError::OutOfOrder => "Out Of Order",
            RegisterError::TooManyContacts => "Too Many Contacts",
            RegisterError::Missing(_) => "Bad Request",
            RegisterError::Store(_) => "Server Internal Error",
        }
    }

    /// Headers the response must carry (`Min-Expires` for 423).
    pub fn headers(&self) -> Vec<(HeaderName, String)> {
        match self {
            RegisterError::IntervalTooBrief { min } => {
                vec![(HeaderName::MinExpires, min.to_string())]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let e = RegisterError::IntervalTooBrief { min: 60 };
        assert_eq!((e.code(), e.reason()), (423, "Interval Too Brief"));
        assert_eq!(e.headers(), vec![(HeaderName::MinExpires, "60".into())]);
        assert_eq!(RegisterError::BadStar.code(), 400);
        assert_eq!(RegisterError::OutOfOrder.code(), 500);
        assert_eq!(RegisterError::TooManyContacts.code(), 403);
        assert_eq!(RegisterError::Missing("To").code(), 400);
        let e = RegisterError::Store(StoreError::Unavailable("down".into()));
        assert_eq!((e.code(), e.reason()), (500, "Server Internal Error"));
        assert!(e.headers().is_empty());
    }
}
