//! Reading the lines of an SDP body that the relay cares about.

use crate::error::SdpError;
use std::net::IpAddr;
use std::ops::Range;

/// How many `m=` lines one session anchors at most (each costs two port
/// pairs); a body with more is refused.
pub(crate) const MAX_MEDIA: usize = 16;

/// What a line is, as far as the rewrite is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// `o=`: replaced by ours.
    Origin,
    /// `c=`: replaced by ours.
    Connection,
    /// `m=`: its port is replaced.
    Media,
    /// `a=rtcp:` inside an `m=` section: port (and address) replaced.
    Rtcp,
    /// Anything else: copied as it is.
    Other,
}

/// One line of the body, without and with its terminator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    /// The line without its terminator.
    pub(crate) text: &'a [u8],
    /// `\r\n`, `\n` or nothing (the last line).
    pub(crate) eol: &'a [u8],
    /// What the rewrite does with it.
    pub(crate) kind: LineKind,
    /// The `m=` section the line belongs to (`None`: session level).
    pub(crate) media: Option<usize>,
}

/// The `o=` line's identity and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin<'a> {
    /// `<username>`.
    pub(crate) username: &'a [u8],
    /// `<sess-id>`.
    pub(crate) sess_id: &'a [u8],
    /// `<sess-version>`.
    pub(crate) version: u64,
}

/// `a=rtcp:<port> [IN IP4 <address>]` (RFC 3605).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rtcp {
    /// The RTCP port.
    pub(crate) port: u16,
    /// The RTCP address, when given.
    pub(crate) addr: Option<IpAddr>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaSection<'a> {
    /// Index of the `m=` line in [`Description::lines`].
    pub(crate) line: usize,
    /// The media port (0: rejected or disabled).
    pub(crate) port: u16,
    /// Where the port's digits are in the `m=` line.
    pub(crate) port_at: Range<usize>,
    /// The transport protocol (`RTP/AVP`, `udptl`, …).
    pub(crate) proto: &'a str,
    /// The connection address in force: the section's first `c=`, else the
    /// session's.
    pub(crate) connection: Option<IpAddr>,
    /// The section's `a=rtcp:` attribute.
    pub(crate) rtcp: Option<Rtcp>,
}

impl MediaSection<'_> {
    /// Whether the stream carries RTP (and RTCP): any `RTP/…` profile,
    /// including `UDP/TLS/RTP/SAVPF`.
    pub(crate) fn is_rtp(&self) -> bool {
        self.proto.split('/').any(|p| p.eq_ignore_ascii_case("RTP"))
    }
}

/// An SDP body split into lines, with the parts the relay needs read out.
#[derive(Debug, Clone)]
pub(crate) struct Description<'a> {
    lines: Vec<Line<'a>>,
    origin: Origin<'a>,
    media: Vec<MediaSection<'a>>,
}

impl<'a> Description<'a> {
    /// Splits and checks `body`. Lines may end in CRLF or LF; lines the relay
    /// does not need are only checked to be `<letter>=…`.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Description<'a>, SdpError> {
        let lines = split_lines(body);
        if lines.is_empty() {
            return Err(SdpError::Empty);
        }
        if trim_end(lines[0].text) != b"v=0" {
            return Err(SdpError::Version);
        }
        let mut lines: Vec<Line<'a>> = lines;
        let mut origin = None;
        let mut session_conn = None;
        let mut media: Vec<MediaSection<'a>> = Vec::new();
        for (i, line) in lines.iter_mut().enumerate() {
            let number = i + 1;
            let text = line.text;
            if trim_end(text).is_empty() {
                continue;
            }
            if text.len() < 2 || !text[0].is_ascii_lowercase() || text[1] != b'=' {
                return Err(SdpError::Line(number));
            }
            line.media = media.len().checked_sub(1);
            let value = &text[2..];
            match text[0] {
                b'o' => {
                    if origin.is_some() || !media.is_empty() {
                        return Err(SdpError::Origin);
                    }
                    origin = Some(parse_origin(value)?);
                    line.kind = LineKind::Origin;
                }
                b'c' => {
                    let addr = parse_connection(value, number)?;
                    line.kind = LineKind::Connection;
                    match media.last_mut() {
                        None => {
                            session_conn.get_or_insert(addr);
                        }
                        Some(m) => {
                            m.connection.get_or_insert(addr);
                        }
                    }
                }
                b'm' => {
                    if media.len() == MAX_MEDIA {
                        return Err(SdpError::TooManyMedia(MAX_MEDIA));
                    }
                    let (port, port_at, proto) = parse_media(value, number)?;
                    line.kind = LineKind::Media;
                    line.media = Some(media.len());
                    media.push(MediaSection {
                        line: i,
                        port,
                        port_at: port_at.start + 2..port_at.end + 2,
                        proto,
                        connection: None,
                        rtcp: None,
                    });
                }
                b'a' => {
                    if let (Some(rest), Some(m)) = (value.strip_prefix(b"rtcp:"), media.last_mut())
                    {
                        m.rtcp = Some(parse_rtcp(rest, number)?);
                        line.kind = LineKind::Rtcp;
                    }
                }
                _ => {}
            }
        }
        let origin = origin.ok_or(SdpError::Origin)?;
        for m in &mut media {
            if m.connection.is_none() {
                m.connection = session_conn;
            }
            if m.port != 0 && m.connection.is_none() {
                return Err(SdpError::MissingConnection(m.line + 1));
            }
        }
        Ok(Description {
            lines,
            origin,
            media,
        })
    }

    /// Every line, in order.
    pub(crate) fn lines(&self) -> &[Line<'a>] {
        &self.lines
    }

    /// The `o=` line.
    pub(crate) fn origin(&self) -> Origin<'a> {
        self.origin
    }

    /// The `m=` sections, in order.
    pub(crate) fn media(&self) -> &[MediaSection<'a>] {
        &self.media
    }
}

fn split_lines(body: &[u8]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (line, eol_len) = match rest.iter().position(|&b| b == b'\n') {
            Some(lf) if lf > 0 && rest[lf - 1] == b'\r' => (&rest[..lf - 1], 2),
            Some(lf) => (&rest[..lf], 1),
            None => (rest, 0),
        };
        let eol = &rest[line.len()..line.len() + eol_len];
        lines.push(Line {
            text: line,
            eol,
            kind: LineKind::Other,
            media: None,
        });
        rest = &rest[line.len() + eol_len..];
    }
    lines
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &s[..end]
}

/// Whitespace-separated fields with their byte offsets.
fn fields(s: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < s.len() && (s[at] == b' ' || s[at] == b'\t') {
            at += 1;
        }
        if at >= s.len() {
            return None;
        }
        let start = at;
        while at < s.len() && s[at] != b' ' && s[at] != b'\t' {
            at += 1;
        }
        Some((start, &s[start..at]))
    })
}

fn ascii(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

fn parse_origin(value: &[u8]) -> Result<Origin<'_>, SdpError> {
    let f: Vec<&[u8]> = fields(value).map(|(_, f)| f).collect();
    let [username, sess_id, version, _nettype, _addrtype, _addr] = f[..] else {
        return Err(SdpError::Origin);
    };
    let version = ascii(version)
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or(SdpError::Origin)?;
    Ok(Origin {
        username,
        sess_id,
        version,
    })
}

/// `IN IP4|IP6 <address>[/ttl][/n]` → the address.
fn parse_address(nettype: &[u8], addrtype: &[u8], addr: &[u8]) -> Option<Result<IpAddr, ()>> {
    if !nettype.eq_ignore_ascii_case(b"IN") {
        return None;
    }
    let v6 = match addrtype {
        t if t.eq_ignore_ascii_case(b"IP4") => false,
        t if t.eq_ignore_ascii_case(b"IP6") => true,
        _ => return None,
    };
    let base = addr.split(|&b| b == b'/').next().unwrap_or(addr);
    let parsed = ascii(base).and_then(|s| s.parse::<IpAddr>().ok());
    Some(match parsed {
        Some(ip) if ip.is_ipv6() == v6 => Ok(ip),
        _ => Err(()),
    })
}

fn parse_connection(value: &[u8], number: usize) -> Result<IpAddr, SdpError> {
    let f: Vec<&[u8]> = fields(value).map(|(_, f)| f).collect();
    let [nettype, addrtype, addr] = f[..] else {
        return Err(SdpError::Connection(number));
    };
    match parse_address(nettype, addrtype, addr) {
        None => Err(SdpError::Connection(number)),
        Some(Err(())) => Err(SdpError::UnsupportedAddress(number)),
        Some(Ok(ip)) => Ok(ip),
    }
}

fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    ascii(digits)?.parse().ok()
}

/// `<media> <port>[/<n>] <proto> <fmt> …` → port, where its digits are, proto.
fn parse_media(value: &[u8], number: usize) -> Result<(u16, Range<usize>, &str), SdpError> {
    let mut f = fields(value);
    let err = || SdpError::Media(number);
    let (_, _media) = f.next().ok_or_else(err)?;
    let (at, port_field) = f.next().ok_or_else(err)?;
    let (_, proto) = f.next().ok_or_else(err)?;
    let digits_len = port_field
        .iter()
        .position(|&b| b == b'/')
        .unwrap_or(port_field.len());
    let port = parse_port(&port_field[..digits_len]).ok_or_else(err)?;
    let proto = ascii(proto).ok_or_else(err)?;
    Ok((port, at..at + digits_len, proto))
}

/// `<port> [IN IP4 <address>]`.
fn parse_rtcp(value: &[u8], number: usize) -> Result<Rtcp, SdpError> {
    let f: Vec<&[u8]> = fields(value).map(|(_, f)| f).collect();
    let err = SdpError::Rtcp(number);
    match f[..] {
        [port] => Ok(Rtcp {
            port: parse_port(port).ok_or(err)?,
            addr: None,
        }),
        [port, nettype, addrtype, addr] => {
            let port = parse_port(port).ok_or(err.clone())?;
            match parse_address(nettype, addrtype, addr) {
                Some(Ok(ip)) => Ok(Rtcp {
                    port,
                    addr: Some(ip),
                }),
                Some(Err(())) => Err(SdpError::UnsupportedAddress(number)),
                None => Err(err),
            }
        }
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
        o=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\n\
        s=-\r\n\
        c=IN IP4 198.51.100.1\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 0 8 101\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=rtcp:53020 IN IP4 198.51.100.2\r\n\
        m=video 51372/2 RTP/AVP 31\r\n\
        c=IN IP6 2001:db8::1\r\n\
        m=image 0 udptl t38\r\n";

    #[test]
    fn reads_origin_connections_ports_and_rtcp() {
        let d = Description::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(d.origin().username, b"alice");
        assert_eq!(d.origin().sess_id, b"2890844526");
        assert_eq!(d.origin().version, 2_890_844_526);
        let m = d.media();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].port, 49170);
        assert_eq!(m[0].connection, Some("198.51.100.1".parse().unwrap()));
        assert_eq!(
            m[0].rtcp,
            Some(Rtcp {
                port: 53020,
                addr: Some("198.51.100.2".parse().unwrap())
            })
        );
        assert!(m[0].is_rtp());
        assert_eq!(m[1].port, 51372);
        assert_eq!(m[1].connection, Some("2001:db8::1".parse().unwrap()));
        let line = d.lines()[m[1].line].text;
        assert_eq!(&line[m[1].port_at.clone()], b"51372");
        assert_eq!(m[2].port, 0);
        assert!(!m[2].is_rtp());
        let kinds: Vec<LineKind> = d.lines().iter().map(|l| l.kind).collect();
        use LineKind as K;
        assert_eq!(
            kinds,
            [
                K::Other,
                K::Origin,
                K::Other,
                K::Connection,
                K::Other,
                K::Media,
                K::Other,
                K::Rtcp,
                K::Media,
                K::Connection,
                K::Media
            ]
        );
    }

    #[test]
    fn keeps_line_endings() {
        let d = Description::parse(b"v=0\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\nt=0 0").unwrap();
        let eols: Vec<&[u8]> = d.lines().iter().map(|l| l.eol).collect();
        assert_eq!(eols, [&b"\n"[..], b"\r\n", b"\n", b""]);
    }

    #[test]
    fn refuses_what_the_relay_cannot_use() {
        let cases: &[(&str, SdpError)] = &[
            ("", SdpError::Empty),
            ("v=1\r\n", SdpError::Version),
            ("hello\r\n", SdpError::Version),
            ("v=0\r\ns=-\r\nt=0 0\r\n", SdpError::Origin),
            ("v=0\r\no=- 1 x IN IP4 1.2.3.4\r\n", SdpError::Origin),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nX=1\r\n",
                SdpError::Line(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 pbx.example.com\r\n",
                SdpError::UnsupportedAddress(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 2001:db8::1\r\n",
                SdpError::UnsupportedAddress(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
                SdpError::Connection(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
                SdpError::Media(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n",
                SdpError::MissingConnection(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:x\r\n",
                SdpError::Rtcp(5),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                Description::parse(body.as_bytes()).unwrap_err(),
                *want,
                "{body:?}"
            );
        }
    }

    #[test]
    fn limits_the_number_of_streams() {
        let mut body = String::from("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\n");
        for _ in 0..=MAX_MEDIA {
            body.push_str("m=audio 4000 RTP/AVP 0\r\n");
        }
        assert_eq!(
            Description::parse(body.as_bytes()).unwrap_err(),
            SdpError::TooManyMedia(MAX_MEDIA)
        );
    }

    #[test]
    fn session_level_rtcp_and_lookalikes_are_other_lines() {
        let body = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\na=rtcp:9\r\nc=IN IP4 1.2.3.4\r\n\
                    m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\na=rtcp-fb:* nack\r\n";
        let d = Description::parse(body.as_bytes()).unwrap();
        assert!(d.lines().iter().all(|l| l.kind != LineKind::Rtcp));
        assert_eq!(d.media()[0].rtcp, None);
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples: [&[u8]; 6] = [
            b"v=0\r\n\r\n\r\n",
            b"v=0\no=\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio /2 RTP/AVP\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:1 IN IP4\r\n",
            b"v=0\r\no=\xff\xfe 1 1 IN IP4 1.2.3.4\r\n\xff",
        ];
        for s in samples {
            let _ = Description::parse(s);
        }
    }
}
