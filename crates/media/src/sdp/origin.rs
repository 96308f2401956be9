//! The `o=` line Tandem sends to one side (RFC 3264 §8): the same username
//! and session id for the whole session, the version up by exactly one each
//! time the body changes and unchanged when it does not.

use super::rewrite::Rendered;
use super::scan::Origin;
use bytes::Bytes;

/// The `o=` identity and version Tandem uses towards one side, and the body
/// it sent there last.
#[derive(Debug, Default)]
pub(crate) struct OutboundOrigin {
    ident: Option<(Vec<u8>, Vec<u8>)>,
    version: u64,
    last: Option<Vec<u8>>,
}

impl OutboundOrigin {
    /// The username and session id to write: taken from the first SDP sent
    /// this way (whose version is also the first version), then kept.
    pub(crate) fn ident(&mut self, first: Origin<'_>) -> (&[u8], &[u8]) {
        let (user, id) = self
            .ident
            .get_or_insert_with(|| (first.username.to_vec(), first.sess_id.to_vec()));
        if self.last.is_none() {
            self.version = first.version;
        }
        (user, id)
    }

    /// Inserts the version into `rendered`: the last one sent if the body is
    /// the same, the next one if it differs.
    pub(crate) fn stamp(&mut self, rendered: Rendered) -> Bytes {
        match &self.last {
            Some(last) if *last == rendered.text => {}
            Some(_) => self.version = self.version.wrapping_add(1),
            None => {}
        }
        let version = self.version.to_string();
        let Rendered { text, version_at } = rendered;
        let mut out = Vec::with_capacity(text.len() + version.len());
        out.extend_from_slice(&text[..version_at]);
        out.extend_from_slice(version.as_bytes());
        out.extend_from_slice(&text[version_at..]);
        self.last = Some(text);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(user: &'static str, id: &'static str, version: u64) -> Origin<'static> {
        Origin {
            username: user.as_bytes(),
            sess_id: id.as_bytes(),
            version,
        }
    }

    fn rendered(body: &str) -> Rendered {
        Rendered {
            text: format!("o=x 1  IN IP4 192.0.2.1\r\n{body}").into_bytes(),
            version_at: 6,
        }
    }

    fn version(out: &Bytes) -> String {
        String::from_utf8_lossy(out)
            .split(' ')
            .nth(2)
            .unwrap()
            .to_string()
    }

    #[test]
    fn first_version_is_the_senders_then_up_by_one_per_change() {
        let mut o = OutboundOrigin::default();
        assert_eq!(
            o.ident(origin("alice", "99", 5)),
            (&b"alice"[..], &b"99"[..])
        );
        assert_eq!(version(&o.stamp(rendered("m=audio 1"))), "5");
        // Same body again (a session refresh): same version.
        o.ident(origin("alice", "99", 6));
        assert_eq!(version(&o.stamp(rendered("m=audio 1"))), "5");
        // A change: exactly one more, whatever the sender's version did.
        o.ident(origin("alice", "99", 40));
        assert_eq!(version(&o.stamp(rendered("m=audio 1\r\na=sendonly"))), "6");
        // Back to the earlier body is a change too.
        assert_eq!(version(&o.stamp(rendered("m=audio 1"))), "7");
    }

    #[test]
    fn identity_is_kept_from_the_first_sdp() {
        let mut o = OutboundOrigin::default();
        o.ident(origin("alice", "99", 5));
        o.stamp(rendered(""));
        assert_eq!(
            o.ident(origin("mallory", "1", 1)),
            (&b"alice"[..], &b"99"[..])
        );
    }
}
