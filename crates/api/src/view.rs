//! The A-leg INVITE as a dial plan reads it.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

/// What a script can read about a new call (the caller's INVITE). Header
/// names are canonical (compact forms expanded) and looked up without
/// regard to case.
#[derive(Debug, Clone)]
pub struct CallView {
    /// The dialled user (user part of the Request-URI; empty if none).
    pub user: String,
    /// The Request-URI.
    pub ruri: String,
    /// From and To ([`CallView::from`] and the others read them).
    pub parties: LazyParties,
    /// The caller's Call-ID.
    pub call_id: String,
    /// Address the INVITE came from.
    pub source_ip: IpAddr,
    /// Port the INVITE came from.
    pub source_port: u16,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The listener the INVITE arrived on, as configured: `udp:IP:PORT`
    /// (one text per listener, shared by its calls).
    pub listener: Arc<str>,
    /// The user the caller authenticated as (`None`: not authenticated).
    pub auth_user: Option<String>,
    /// Every header, in order, as (canonical name, value).
    pub headers: crate::HeaderList,
    /// Per-call variables set before the dial plan ran (by plugins of a
    /// chain); a Lua script starts with them in `call.vars`.
    pub vars: std::collections::BTreeMap<String, crate::Value>,
}

/// The caller and the callee of a call, as a script reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties {
    /// The From URI.
    pub from: String,
    /// The user part of the From URI.
    pub from_user: String,
    /// The From display name, without quotes (empty if none).
    pub from_name: String,
    /// The To URI.
    pub to: String,
}

/// [`Parties`] made from the INVITE when a script first reads one of them:
/// most dial plans never do, and parsing and writing two URIs was a
/// sixth of what the view cost (BENCHMARKS.md, "Lua dial plans").
#[derive(Clone)]
pub struct LazyParties {
    parties: OnceLock<Parties>,
    read: Option<Arc<dyn Fn() -> Parties + Send + Sync>>,
}

impl LazyParties {
    /// Parties known already.
    pub fn known(parties: Parties) -> LazyParties {
        LazyParties {
            parties: OnceLock::from(parties),
            read: None,
        }
    }

    /// Parties that `read` makes when first asked for.
    pub fn read_with(read: impl Fn() -> Parties + Send + Sync + 'static) -> LazyParties {
        LazyParties {
            parties: OnceLock::new(),
            read: Some(Arc::new(read)),
        }
    }

    /// The parties (made now if not yet).
    pub fn get(&self) -> &Parties {
        self.parties.get_or_init(|| self.read())
    }

    /// Changes the parties (made first if not yet).
    pub fn edit(&mut self, edit: impl FnOnce(&mut Parties)) {
        let mut parties = self.parties.take().unwrap_or_else(|| self.read());
        edit(&mut parties);
        *self = LazyParties::known(parties);
    }

    fn read(&self) -> Parties {
        self.read.as_ref().map(|read| read()).unwrap_or_default()
    }
}

impl std::fmt::Debug for LazyParties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parties.get() {
            Some(p) => p.fmt(f),
            None => f.write_str("Parties(not read yet)"),
        }
    }
}

impl CallView {
    /// The From URI.
    pub fn from(&self) -> &str {
        &self.parties.get().from
    }

    /// The user part of the From URI.
    pub fn from_user(&self) -> &str {
        &self.parties.get().from_user
    }

    /// The From display name, without quotes (empty if none).
    pub fn from_name(&self) -> &str {
        &self.parties.get().from_name
    }

    /// The To URI.
    pub fn to(&self) -> &str {
        &self.parties.get().to
    }

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
            parties: LazyParties::known(Parties {
                from: from.clone(),
                from_user: from_user.to_string(),
                from_name: String::new(),
                to: ruri.clone(),
            }),
            call_id: "simulated-call@tandem".to_string(),
            source_ip: IpAddr::from([127, 0, 0, 1]),
            source_port: 5060,
            transport: "udp".to_string(),
            listener: "udp:127.0.0.1:5060".into(),
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
