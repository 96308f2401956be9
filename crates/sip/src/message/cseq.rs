//! The `CSeq` header (RFC 3261 §20.16).

use super::method::Method;
use super::text::{is_lws, is_token, parse_u64, trim};
use bytes::Bytes;

/// Why a CSeq value is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CSeqError {
    /// The sequence number is missing or above 2**32-1.
    #[error("CSeq number is not a 32-bit unsigned integer")]
    Number,
    /// The method is missing or not a token.
    #[error("CSeq method is not a token")]
    Method,
}

/// A CSeq: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number.
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value, sharing `src` for extension methods.
    pub fn parse_shared(src: &Bytes, value: &[u8]) -> Result<CSeq, CSeqError> {
        let s = trim(value);
        let split = s.iter().position(|&b| is_lws(b)).ok_or(CSeqError::Method)?;
        let seq = parse_u64(&s[..split], u64::from(u32::MAX)).ok_or(CSeqError::Number)? as u32;
        let m = trim(&s[split..]);
        if !is_token(m) {
            return Err(CSeqError::Method);
        }
        Ok(CSeq {
            seq,
            method: Method::from_shared(src, m),
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.method.as_bytes());
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<CSeq, CSeqError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        CSeq::parse_shared(&b, &b)
    }

    #[test]
    fn parses() {
        assert_eq!(
            p("0009 INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert_eq!(p("4294967295 ACK").unwrap().seq, u32::MAX);
        assert_eq!(p("36893488147419103232 REGISTER"), Err(CSeqError::Number));
        assert_eq!(p("1"), Err(CSeqError::Method));
    }
}
