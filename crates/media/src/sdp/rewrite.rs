//! Writing the SDP one side receives: our address and ports in, everything
//! else as it arrived.

use super::scan::{Description, LineKind};
use std::io::Write;
use std::net::IpAddr;

/// What goes into the rewritten body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ours<'p> {
    /// The advertised address (`o=`, `c=`, `a=rtcp:`).
    pub(crate) addr: IpAddr,
    /// Per `m=` section, our RTP port facing the receiver; `None` keeps the
    /// section's port (a rejected stream stays at port 0).
    pub(crate) ports: &'p [Option<u16>],
    /// The `o=` username to write.
    pub(crate) username: &'p [u8],
    /// The `o=` session id to write.
    pub(crate) sess_id: &'p [u8],
}

/// A rewritten body with the `o=` session version still to be inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// The body without the version digits.
    pub(crate) text: Vec<u8>,
    /// Where the version digits go in `text`.
    pub(crate) version_at: usize,
}

fn addrtype(addr: IpAddr) -> &'static str {
    if addr.is_ipv6() { "IP6" } else { "IP4" }
}

/// Rewrites `desc` for the side that receives it.
pub(crate) fn render(desc: &Description<'_>, ours: &Ours<'_>) -> Rendered {
    let mut text = Vec::with_capacity(desc.lines().iter().map(|l| l.text.len() + 2).sum());
    let mut version_at = 0;
    let at = addrtype(ours.addr);
    // Writing into a Vec cannot fail.
    for line in desc.lines() {
        let port = line
            .media
            .and_then(|m| ours.ports.get(m).copied().flatten());
        match line.kind {
            LineKind::Origin => {
                text.extend_from_slice(b"o=");
                text.extend_from_slice(ours.username);
                text.push(b' ');
                text.extend_from_slice(ours.sess_id);
                text.push(b' ');
                version_at = text.len();
                let _ = write!(text, " IN {at} {}", ours.addr);
            }
            LineKind::Connection => {
                let _ = write!(text, "c=IN {at} {}", ours.addr);
            }
            LineKind::Media => match (port, line.media.and_then(|m| desc.media().get(m))) {
                (Some(port), Some(section)) => {
                    text.extend_from_slice(&line.text[..section.port_at.start]);
                    let _ = write!(text, "{port}");
                    text.extend_from_slice(&line.text[section.port_at.end..]);
                }
                _ => text.extend_from_slice(line.text),
            },
            LineKind::Rtcp => match (port, line.media.and_then(|m| desc.media().get(m))) {
                (Some(port), Some(section)) => {
                    let _ = write!(text, "a=rtcp:{}", port.wrapping_add(1));
                    if section.rtcp.is_some_and(|r| r.addr.is_some()) {
                        let _ = write!(text, " IN {at} {}", ours.addr);
                    }
                }
                _ => text.extend_from_slice(line.text),
            },
            LineKind::Other => text.extend_from_slice(line.text),
        }
        text.extend_from_slice(line.eol);
    }
    Rendered { text, version_at }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(body: &str, ports: &[Option<u16>], addr: &str) -> String {
        let desc = Description::parse(body.as_bytes()).unwrap();
        let o = desc.origin();
        let r = render(
            &desc,
            &Ours {
                addr: addr.parse().unwrap(),
                ports,
                username: o.username,
                sess_id: o.sess_id,
            },
        );
        let mut text = r.text;
        text.splice(r.version_at..r.version_at, b"7".iter().copied());
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn replaces_only_what_points_at_the_sender() {
        let body = "v=0\r\n\
            o=bob 42 1 IN IP4 198.51.100.7\r\n\
            s=Talk\r\n\
            c=IN IP4 198.51.100.7\r\n\
            b=AS:80\r\n\
            t=0 0\r\n\
            a=X-nonsense:  kept  as is \r\n\
            m=audio 49170 RTP/AVP 0 101\r\n\
            c=IN IP4 198.51.100.8/127\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-15\r\n\
            a=ptime:20\r\n\
            a=rtcp:49300\r\n\
            a=rtcp-mux\r\n\
            a=sendonly\r\n\
            m=video 51372/2 RTP/AVP 31\r\n\
            a=rtcp:53001 IN IP4 198.51.100.9\r\n\
            m=image 0 udptl t38\r\n\
            a=rtcp:1\r\n";
        let out = rewrite(body, &[Some(30000), Some(30002), None], "192.0.2.1");
        assert_eq!(
            out,
            "v=0\r\n\
            o=bob 42 7 IN IP4 192.0.2.1\r\n\
            s=Talk\r\n\
            c=IN IP4 192.0.2.1\r\n\
            b=AS:80\r\n\
            t=0 0\r\n\
            a=X-nonsense:  kept  as is \r\n\
            m=audio 30000 RTP/AVP 0 101\r\n\
            c=IN IP4 192.0.2.1\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-15\r\n\
            a=ptime:20\r\n\
            a=rtcp:30001\r\n\
            a=rtcp-mux\r\n\
            a=sendonly\r\n\
            m=video 30002/2 RTP/AVP 31\r\n\
            a=rtcp:30003 IN IP4 192.0.2.1\r\n\
            m=image 0 udptl t38\r\n\
            a=rtcp:1\r\n"
        );
    }

    #[test]
    fn ipv6_both_ways_and_bare_lf() {
        let body = "v=0\no=- 1 1 IN IP6 2001:db8::5\ns=-\nc=IN IP6 2001:db8::5\nt=0 0\nm=audio 5004 RTP/AVP 8";
        assert_eq!(
            rewrite(body, &[Some(20000)], "192.0.2.1"),
            "v=0\no=- 1 7 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 20000 RTP/AVP 8"
        );
        assert_eq!(
            rewrite(body, &[Some(20000)], "2001:db8::100"),
            "v=0\no=- 1 7 IN IP6 2001:db8::100\ns=-\nc=IN IP6 2001:db8::100\nt=0 0\nm=audio 20000 RTP/AVP 8"
        );
    }
}
