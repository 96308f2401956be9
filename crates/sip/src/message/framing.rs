//! Cutting messages out of a byte stream (TCP, RFC 3261 §18.3): headers end
//! at the first empty line, the body is Content-Length octets long, and
//! CRLF keep-alives (RFC 5626 §3.5.1) between messages are skipped.

use super::text::{parse_u64, trim};

/// What the stream buffer holds next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFrame {
    /// Not enough data yet.
    Incomplete,
    /// `n` octets of CRLF keep-alive to discard; `ping` when it was a
    /// double-CRLF ping that wants a single CRLF pong.
    KeepAlive {
        /// Octets to discard.
        len: usize,
        /// True for a `CRLFCRLF` ping.
        ping: bool,
    },
    /// One complete message of `len` octets at the start of the buffer.
    Message {
        /// Octets of the message, headers and body.
        len: usize,
    },
}

/// Why the stream cannot be framed; the connection should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message would exceed the configured size limit.
    #[error("message exceeds {0} octets")]
    TooLarge(usize),
    /// Content-Length is missing, negative, not a number, or ambiguous.
    #[error("missing or invalid Content-Length on a stream")]
    ContentLength,
}

/// Looks at the start of `buf` and says what it holds.
pub fn frame_stream(buf: &[u8], max: usize) -> Result<StreamFrame, FrameError> {
    let skip = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    if skip > 0 {
        return Ok(StreamFrame::KeepAlive {
            len: skip,
            ping: skip >= 4 && &buf[..4] == b"\r\n\r\n",
        });
    }
    let (header_end, body_start) = match find_header_end(buf) {
        Some(v) => v,
        None if buf.len() > max => return Err(FrameError::TooLarge(max)),
        None => return Ok(StreamFrame::Incomplete),
    };
    let mut length: Option<usize> = None;
    let mut lines = buf[..header_end].split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        // Continuation lines belong to the header before them.
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = trim(&line[colon + 1..]).to_vec();
        while let Some(cont) =
            lines.next_if(|l| l.first().is_some_and(|&b| b == b' ' || b == b'\t'))
        {
            value.extend_from_slice(trim(cont));
        }
        let n = parse_u64(&value, u64::from(u32::MAX)).ok_or(FrameError::ContentLength)? as usize;
        if length.is_some_and(|l| l != n) {
            return Err(FrameError::ContentLength);
        }
        length = Some(n);
    }
    let length = length.ok_or(FrameError::ContentLength)?;
    let total = body_start
        .checked_add(length)
        .ok_or(FrameError::TooLarge(max))?;
    if total > max {
        return Err(FrameError::TooLarge(max));
    }
    if buf.len() < total {
        return Ok(StreamFrame::Incomplete);
    }
    Ok(StreamFrame::Message { len: total })
}

/// Offset of the empty line ending the headers and of the body.
fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let nl = from + i;
        let next = &buf[nl + 1..];
        if next.starts_with(b"\r\n") {
            return Some((nl, nl + 3));
        }
        if next.starts_with(b"\n") {
            return Some((nl, nl + 2));
        }
        from = nl + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";

    #[test]
    fn frames_messages_and_keepalives() {
        assert_eq!(
            frame_stream(MSG, 1000),
            Ok(StreamFrame::Message { len: MSG.len() })
        );
        assert_eq!(
            frame_stream(&MSG[..MSG.len() - 1], 1000),
            Ok(StreamFrame::Incomplete)
        );
        assert_eq!(
            frame_stream(b"\r\n\r\nOPT", 1000),
            Ok(StreamFrame::KeepAlive { len: 4, ping: true })
        );
    }

    #[test]
    fn rejects_unframeable_streams() {
        assert_eq!(frame_stream(MSG, 20), Err(FrameError::TooLarge(20)));
        assert_eq!(
            frame_stream(b"OPTIONS sip:a@b SIP/2.0\r\nl: -999\r\n\r\n", 1000),
            Err(FrameError::ContentLength)
        );
        assert_eq!(
            frame_stream(b"OPTIONS sip:a@b SIP/2.0\r\nX: y\r\n\r\n", 1000),
            Err(FrameError::ContentLength)
        );
        assert_eq!(frame_stream(&[b'A'; 50], 20), Err(FrameError::TooLarge(20)));
        // Folded lines: a continuation is never a header of its own, and a
        // folded Content-Length is read whole (agreeing with the parser).
        let folded: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: hi\r\n l: 5\r\nl: 0\r\n\r\n";
        assert_eq!(
            frame_stream(folded, 100),
            Ok(StreamFrame::Message { len: folded.len() })
        );
        let folded_length: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length:\r\n 2\r\n\r\nab";
        assert_eq!(
            frame_stream(folded_length, 100),
            Ok(StreamFrame::Message {
                len: folded_length.len()
            })
        );
        // A declared body far beyond the limit is "too large", not invalid.
        assert_eq!(
            frame_stream(b"OPTIONS sip:a@b SIP/2.0\r\nl: 5000\r\n\r\n", 2048),
            Err(FrameError::TooLarge(2048))
        );
    }
}
