//! Stateless, integrity-protected nonces: hex of
//! `issued-at (ms, u64 BE) ‖ counter (u64 BE) ‖ MAC`, where the MAC is the
//! first 16 bytes of SHA-256(secret ‖ issued-at ‖ counter ‖ secret) under a
//! random per-process secret. The input has a fixed length, so the keyed
//! hash is not open to length extension.

use sha2::{Digest as _, Sha256};

const DATA: usize = 16;
const MAC: usize = 16;
const LEN: usize = DATA + MAC;

/// A nonce that verified: when it was issued and its unique counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nonce {
    pub(crate) issued_ms: u64,
    pub(crate) counter: u64,
}

pub(crate) struct NonceKey {
    secret: [u8; 32],
}

impl NonceKey {
    pub(crate) fn new(secret: [u8; 32]) -> NonceKey {
        NonceKey { secret }
    }

    fn mac(&self, data: &[u8; DATA]) -> [u8; MAC] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(data);
        h.update(self.secret);
        let full = h.finalize();
        let mut out = [0u8; MAC];
        out.copy_from_slice(&full[..MAC]);
        out
    }

    pub(crate) fn issue(&self, n: Nonce) -> String {
        let mut data = [0u8; DATA];
        data[..8].copy_from_slice(&n.issued_ms.to_be_bytes());
        data[8..].copy_from_slice(&n.counter.to_be_bytes());
        let mac = self.mac(&data);
        let mut s = String::with_capacity(LEN * 2);
        for b in data.iter().chain(mac.iter()) {
            s.push(hex_digit(b >> 4));
            s.push(hex_digit(b & 0x0f));
        }
        s
    }

    /// The nonce's contents when it is one of ours.
    pub(crate) fn verify(&self, s: &str) -> Option<Nonce> {
        let bytes = decode_hex::<LEN>(s)?;
        let mut data = [0u8; DATA];
        data.copy_from_slice(bytes.get(..DATA)?);
        if !ct_eq(&self.mac(&data), bytes.get(DATA..)?) {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(data.get(..8)?);
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(data.get(8..)?);
        Some(Nonce {
            issued_ms: u64::from_be_bytes(ts),
            counter: u64::from_be_bytes(ctr),
        })
    }
}

fn hex_digit(v: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(v & 0x0f)])
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Compares in time independent of where the inputs differ (the lengths
/// are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_forgeries() {
        let k = NonceKey::new([7; 32]);
        let n = Nonce {
            issued_ms: 123_456,
            counter: u64::MAX - 3,
        };
        let s = k.issue(n);
        assert_eq!(s.len(), 64);
        assert_eq!(k.verify(&s), Some(n));
        assert_eq!(k.verify(&s.to_ascii_uppercase()), Some(n));
        // Another process's secret.
        assert_eq!(NonceKey::new([8; 32]).verify(&s), None);
        // A changed timestamp.
        let mut forged = s.clone().into_bytes();
        forged[15] = if forged[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.verify(std::str::from_utf8(&forged).unwrap()), None);
        for bad in [
            "",
            "xyz",
            &s[..62],
            &format!("{s}00"),
            &s.replace(|_| true, "g"),
        ] {
            assert_eq!(k.verify(bad), None, "{bad}");
        }
        // Non-ASCII of the right byte length must not panic.
        assert_eq!(k.verify(&"é".repeat(32)), None);
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
