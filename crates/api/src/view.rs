//! The A-leg INVITE as a dial plan reads it.

use std::net::IpAddr;

/// What a script can read about a new call (the caller's INVITE). Header
/// names are canonical (compact forms expanded) and looked up without
/// regard to case.
#[derive(Debug, Clone)]
pub struct CallView {
    /// The dialled user (user part of the Request-URI; empty if none).
    pub user: String,
    /// The Request-URI.
    pub ruri: String,
    /// The From URI.
    pub from: String,
    /// The user part of the From URI.
    pub from_user: String,
    /// The From display name, without quotes (empty if none).
    pub from_name: String,
    /// The To URI.
    pub to: String,
    /// The caller's Call-ID.
    pub call_id: String,
    /// Address the INVITE came from.
    pub source_ip: IpAddr,
    /// Port the INVITE came from.
    pub source_port: u16,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The listener the INVITE arrived on, as configured: `udp:IP:PORT`.
    pub listener: String,
    /// The user the caller authenticated as (`None`: not authenticated).
    pub auth_user: Option<String>,
    /// Every header, in order, as (canonical name, value).
    pub headers: crate::HeaderList,
    /// Per-call variables set before the dial plan ran (by plugins of a
    /// chain); a Lua script starts with them in `call.vars`.
    pub vars: std::collections::BTreeMap<String, crate::Value>,
}

impl CallView {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.first(name)
    }

    /// Every value of header `name`, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.headers.values(name)
    }

    /// A view for tests and `tandem simulate`: a call from `from_user` to
    /// `user` at 127.0.0.1 over UDP.
    pub fn simulated(from_user: &str, user: &str) -> CallView {
        let ruri = format!("sip:{user}@127.0.0.1");
        let from = format!("sip:{from_user}@127.0.0.1");
        CallView {
            user: user.to_string(),
            ruri: ruri.clone(),
            from: from.clone(),
            from_user: from_user.to_string(),
            from_name: String::new(),
            to: ruri.clone(),
            call_id: "simulated-call@tandem".to_string(),
            source_ip: IpAddr::from([127, 0, 0, 1]),
            source_port: 5060,
            transport: "udp".to_string(),
            listener: "udp:127.0.0.1:5060".to_string(),
            auth_user: None,
            vars: Default::default(),
            headers: [
                ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsim"),
                ("Max-Forwards", "70"),
                ("From", &format!("<{from}>;tag=sim")),
                ("To", &format!("<{ruri}>")),
                ("Call-ID", "simulated-call@tandem"),
                ("CSeq", "1 INVITE"),
                ("Contact", &format!("<{from}>")),
            ]
            .into_iter()
            .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case_and_compact_forms() {
        let mut v = CallView::simulated("alice", "1000");
        v.headers.push("X-Foo", "a");
        v.headers.push("x-foo", "b");
        assert_eq!(v.header("x-FOO"), Some("a"));
        assert_eq!(v.headers("X-Foo"), vec!["a", "b"]);
        assert_eq!(v.header("i"), Some("simulated-call@tandem"));
        assert_eq!(v.header("X-None"), None);
    }
}
