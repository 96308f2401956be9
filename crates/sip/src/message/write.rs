//! Serialization of a message to its wire form. Content-Length is always
//! written from the body actually carried, so a changed body never goes out
//! with a stale length.

use super::header::HeaderName;
use super::{Message, StartLine};
use bytes::Bytes;
use std::io::Write as _;

impl Message {
    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                uri.write_to(out);
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                let _ = write!(out, "{code}");
                out.push(b' ');
                out.extend_from_slice(reason);
                out.extend_from_slice(b"\r\n");
            }
        }
        let mut wrote_length = false;
        for h in self.headers.iter() {
            if h.name == HeaderName::ContentLength {
                if !wrote_length {
                    write_length(out, self.body.len());
                    wrote_length = true;
                }
                continue;
            }
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&h.value);
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_length {
            write_length(out, self.body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The wire form as one buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.wire_len_estimate());
        self.write_to(&mut out);
        Bytes::from(out)
    }

    fn wire_len_estimate(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.name.as_bytes().len() + h.value.len() + 4)
            .sum();
        headers + self.body.len() + 128
    }
}

fn write_length(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"Content-Length: ");
    let _ = write!(out, "{n}");
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::super::parse_datagram;
    use bytes::Bytes;

    #[test]
    fn round_trip_keeps_unknown_headers_byte_for_byte() {
        let raw = b"SIP/2.0 183 Session Progress\r\n\
Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:c@d>;tag=1\r\n\
To: <sip:a@b>;tag=2\r\n\
Call-ID: x\r\n\
CSeq: 1 INVITE\r\n\
X-Weird: ;;,,;;,; \"q\"\r\n\
Content-Length: 0\r\n\
\r\n";
        let m = parse_datagram(Bytes::from_static(raw)).unwrap();
        // rsip 0.4 mangles this reason phrase into "SessionProgress".
        assert_eq!(m.reason().as_deref(), Some("Session Progress"));
        let out = m.to_bytes();
        let want: &[u8] = b"SIP/2.0 183 Session Progress\r\n\
Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:c@d>;tag=1\r\n\
To: <sip:a@b>;tag=2\r\n\
Call-ID: x\r\n\
CSeq: 1 INVITE\r\n\
X-Weird: ;;,,;;,; \"q\"\r\n\
Content-Length: 0\r\n\
\r\n";
        assert_eq!(&out[..], want);
    }

    #[test]
    fn content_length_follows_the_body() {
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:c@d>;tag=1\r\nt: sip:a@b\r\ni: x\r\nCSeq: 1 MESSAGE\r\nl: 2\r\n\r\nhi";
        let mut m = parse_datagram(Bytes::from_static(raw)).unwrap();
        m.set_body("text/plain", "hello");
        let out = m.to_bytes();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("Content-Length: 5\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello"));
    }
}
