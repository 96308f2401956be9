//! The registrar: applies REGISTERs to the location store (RFC 3261 §10.3
//! steps 6–8) and answers lookups.

use crate::binding::{Binding, Path};
use crate::date::rfc1123_date;
use crate::error::RegisterError;
use crate::register::{RegisterRequest, parse_register};
use crate::store::LocationStore;
use sip::message::{HeaderName, Message};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tracing::debug;

/// Registration limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest non-zero expiration accepted, seconds (shorter: 423).
    pub min_expires: u32,
    /// Longest expiration granted, seconds (longer ones are clamped).
    pub max_expires: u32,
    /// Expiration when the request gives none, seconds.
    pub default_expires: u32,
    /// Most live bindings one AOR may hold (more: 403).
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> RegistrarConfig {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

impl RegistrarConfig {
    /// `default_expires` brought within `min_expires..=max_expires`.
    pub(crate) fn effective_default(&self) -> u32 {
        self.default_expires
            .max(self.min_expires)
            .min(self.max_expires)
    }
}

/// The registrar and location service over a [`LocationStore`].
pub struct Registrar {
    config: RegistrarConfig,
    store: Arc<dyn LocationStore>,
    /// Serializes read-modify-write updates of the store.
    update: Mutex<()>,
}

impl Registrar {
    /// A registrar with `config` over `store`.
    pub fn new(config: RegistrarConfig, store: Arc<dyn LocationStore>) -> Registrar {
        Registrar {
            config,
            store,
            update: Mutex::new(()),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The location store.
    pub fn store(&self) -> &Arc<dyn LocationStore> {
        &self.store
    }

    /// Processes one REGISTER (RFC 3261 §10.3 steps 5–8) for `aor`, which
    /// the core has authenticated and authorised (the To user is not
    /// consulted). `path` is where the request came from; `attrs` (from the
    /// dial plan's `on_register`) are set on every binding it writes; `now`
    /// is unix seconds. Returns the AOR's live bindings after the update,
    /// in [`lookup`](Registrar::lookup) order, for the 200 OK; on error
    /// nothing changed.
    pub fn register(
        &self,
        aor: &str,
        request: &Message,
        path: Path,
        now: u64,
        attrs: &BTreeMap<String, String>,
    ) -> Result<Vec<Binding>, RegisterError> {
        let parsed = parse_register(request, &self.config)?;
        self.apply(aor, &parsed, path, now, attrs)
    }

    /// [`register`](Registrar::register) for a request already read by
    /// [`parse_register`].
    pub fn apply(
        &self,
        aor: &str,
        request: &RegisterRequest,
        path: Path,
        now: u64,
        attrs: &BTreeMap<String, String>,
    ) -> Result<Vec<Binding>, RegisterError> {
        let _guard = self.update.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = self.store.get(aor);
        let live: Vec<Binding> = stored.iter().filter(|b| b.is_live(now)).cloned().collect();

        if request.is_query() {
            return Ok(sorted(live));
        }
        if request.star {
            // §10.3 step 6: a binding of the same Call-ID goes only with a
            // higher CSeq; otherwise the whole request fails.
            if live
                .iter()
                .any(|b| b.call_id == request.call_id && request.cseq <= b.cseq)
            {
                return Err(RegisterError::OutOfOrder);
            }
            self.store.put(aor, &[])?;
            debug!(aor, removed = live.len(), "all bindings removed");
            return Ok(Vec::new());
        }

        // (binding, written by this request)
        let mut set: Vec<(Binding, bool)> = live.into_iter().map(|b| (b, false)).collect();
        for contact in &request.contacts {
            let mut kept = Vec::with_capacity(set.len());
            for (b, new) in set {
                if !b.is_same(contact) {
                    kept.push((b, new));
                } else if !new && b.call_id == request.call_id && request.cseq <= b.cseq {
                    // §10.3 step 7.
                    return Err(RegisterError::OutOfOrder);
                } else if contact.expires == 0 {
                    debug!(aor, contact = %b.contact, "binding removed");
                }
            }
            set = kept;
            if contact.expires > 0 {
                set.push((
                    Binding {
                        aor: aor.to_string(),
                        contact: contact.uri.clone(),
                        q: contact.q,
                        expires_at: now + u64::from(contact.expires),
                        call_id: request.call_id.clone(),
                        cseq: request.cseq,
                        instance: contact.instance.clone(),
                        reg_id: contact.reg_id,
                        path,
                        user_agent: request.user_agent.clone(),
                        attrs: attrs.clone(),
                        registered_at: now,
                    },
                    true,
                ));
            }
        }
        if set.len() > self.config.max_contacts {
            return Err(RegisterError::TooManyContacts);
        }
        let bindings: Vec<Binding> = set.into_iter().map(|(b, _)| b).collect();
        self.store.put(aor, &bindings)?;
        debug!(aor, bindings = bindings.len(), "registered");
        Ok(sorted(bindings))
    }

    /// The live bindings of `aor`: highest q first (none counts as 1.0),
    /// then the most recently registered.
    pub fn lookup(&self, aor: &str, now: u64) -> Vec<Binding> {
        sorted(
            self.store
                .get(aor)
                .into_iter()
                .filter(|b| b.is_live(now))
                .collect(),
        )
    }

    /// Removes expired bindings from the store (the core calls it every
    /// second); returns how many were removed.
    pub fn expire(&self, now: u64) -> usize {
        let _guard = self.update.lock().unwrap_or_else(PoisonError::into_inner);
        let mut removed = 0;
        for aor in self.store.aors() {
            let (live, dead): (Vec<Binding>, Vec<Binding>) = self
                .store
                .get(&aor)
                .into_iter()
                .partition(|b| b.is_live(now));
            if dead.is_empty() {
                continue;
            }
            if let Err(e) = self.store.put(&aor, &live) {
                tracing::warn!(aor, error = %e, "could not remove expired bindings");
                continue;
            }
            for b in &dead {
                debug!(aor, contact = %b.contact, "binding expired");
            }
            removed += dead.len();
        }
        removed
    }

    /// The number of stored bindings (expired ones not yet removed by
    /// [`expire`](Registrar::expire) included).
    pub fn count(&self) -> usize {
        self.store.len()
    }
}

/// Highest q first, then most recently registered, then latest expiry.
fn sorted(mut bindings: Vec<Binding>) -> Vec<Binding> {
    bindings.sort_by(|a, b| {
        b.effective_q()
            .total_cmp(&a.effective_q())
            .then(b.registered_at.cmp(&a.registered_at))
            .then(b.expires_at.cmp(&a.expires_at))
    });
    bindings
}

/// The headers of the 200 OK to a REGISTER: one Contact per binding
/// ([`Binding::contact_header`]) and a `Date` (RFC 3261 §10.3 step 8).
pub fn ok_headers(bindings: &[Binding], now: u64) -> Vec<(HeaderName, String)> {
    bindings
        .iter()
        .map(|b| (HeaderName::Contact, b.contact_header(now)))
        .chain(std::iter::once((HeaderName::Date, rfc1123_date(now))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_store::FileStore;
    use crate::store::MemoryStore;
    use crate::testutil::{register_msg, udp};

    const T0: u64 = 1_700_000_000;

    fn registrar() -> Registrar {
        Registrar::new(RegistrarConfig::default(), Arc::new(MemoryStore::new()))
    }

    fn reg(
        r: &Registrar,
        contacts: &[&str],
        extra: &str,
        call_id: &str,
        cseq: u32,
        now: u64,
    ) -> Result<Vec<Binding>, RegisterError> {
        let msg = register_msg("alice", contacts, extra, call_id, cseq);
        r.register(
            "alice",
            &msg,
            udp("203.0.113.7:40000"),
            now,
            &BTreeMap::new(),
        )
    }

    fn contacts(b: &[Binding]) -> Vec<&str> {
        b.iter().map(|b| b.contact.as_str()).collect()
    }

    #[test]
    fn add_refresh_query() {
        let r = registrar();
        let out = reg(
            &r,
            &["<sip:alice@192.168.1.20:5060>"],
            "Expires: 600\r\nUser-Agent: P/1\r\n",
            "c1",
            1,
            T0,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        let b = &out[0];
        assert_eq!(
            (b.aor.as_str(), b.contact.as_str()),
            ("alice", "sip:alice@192.168.1.20:5060")
        );
        assert_eq!((b.expires_at, b.registered_at), (T0 + 600, T0));
        assert_eq!((b.call_id.as_str(), b.cseq), ("c1", 1));
        assert_eq!(b.user_agent.as_deref(), Some("P/1"));
        // Refresh: same binding, new expiry.
        let out = reg(
            &r,
            &["<sip:alice@192.168.1.20:5060>"],
            "Expires: 600\r\n",
            "c1",
            2,
            T0 + 300,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].expires_at, out[0].cseq), (T0 + 900, 2));
        assert_eq!(r.count(), 1);
        // Query: no Contact, nothing changes, even with an old CSeq.
        let out = reg(&r, &[], "", "other", 1, T0 + 301).unwrap();
        assert_eq!(contacts(&out), vec!["sip:alice@192.168.1.20:5060"]);
        assert_eq!(out[0].expires_at, T0 + 900);
        assert_eq!(r.lookup("alice", T0 + 301), out);
        assert!(r.lookup("bob", T0).is_empty());
    }

    #[test]
    fn remove_one_and_all() {
        let r = registrar();
        reg(
            &r,
            &[
                "<sip:alice@10.0.0.1>",
                "<sip:alice@10.0.0.2>",
                "<sip:alice@10.0.0.3>",
            ],
            "",
            "c1",
            1,
            T0,
        )
        .unwrap();
        assert_eq!(r.count(), 3);
        let out = reg(&r, &["<sip:alice@10.0.0.2>;expires=0"], "", "c1", 2, T0 + 1).unwrap();
        assert_eq!(out.len(), 2);
        assert!(!contacts(&out).contains(&"sip:alice@10.0.0.2"));
        // Removing an unknown contact is fine.
        assert_eq!(
            reg(
                &r,
                &["<sip:alice@10.9.9.9>"],
                "Expires: 0\r\n",
                "c1",
                3,
                T0 + 2
            )
            .unwrap()
            .len(),
            2
        );
        // Star with a stale CSeq of the same Call-ID fails, nothing changes.
        // (Bindings keep the CSeq of the request that last wrote them.)
        assert!(matches!(
            reg(&r, &["*"], "Expires: 0\r\n", "c1", 1, T0 + 3),
            Err(RegisterError::OutOfOrder)
        ));
        assert_eq!(r.count(), 2);
        // Star misuse.
        assert!(matches!(
            reg(&r, &["*"], "Expires: 60\r\n", "c1", 4, T0 + 3),
            Err(RegisterError::BadStar)
        ));
        assert!(matches!(
            reg(
                &r,
                &["*", "<sip:alice@10.0.0.1>"],
                "Expires: 0\r\n",
                "c1",
                4,
                T0 + 3
            ),
            Err(RegisterError::BadStar)
        ));
        assert_eq!(r.count(), 2);
        // A different Call-ID may remove all.
        assert!(
            reg(&r, &["*"], "Expires: 0\r\n", "c2", 1, T0 + 4)
                .unwrap()
                .is_empty()
        );
        assert_eq!(r.count(), 0);
        assert!(r.store().aors().is_empty());
    }

    #[test]
    fn q_ordering() {
        let r = registrar();
        reg(
            &r,
            &[
                "<sip:alice@10.0.0.1>;q=0.1",
                "<sip:alice@10.0.0.2>",
                "<sip:alice@10.0.0.3>;q=0.5",
            ],
            "",
            "c1",
            1,
            T0,
        )
        .unwrap();
        reg(&r, &["<sip:alice@10.0.0.4>;q=0.5"], "", "c2", 1, T0 + 10).unwrap();
        let out = r.lookup("alice", T0 + 20);
        assert_eq!(
            contacts(&out),
            vec![
                "sip:alice@10.0.0.2",
                "sip:alice@10.0.0.4",
                "sip:alice@10.0.0.3",
                "sip:alice@10.0.0.1"
            ]
        );
        assert_eq!(out[1].q, Some(0.5));
        // q 1.0 and no q tie: the most recent first.
        reg(&r, &["<sip:alice@10.0.0.5>;q=1"], "", "c3", 1, T0 + 30).unwrap();
        assert_eq!(
            contacts(&r.lookup("alice", T0 + 31))[..2],
            ["sip:alice@10.0.0.5", "sip:alice@10.0.0.2"]
        );
    }

    #[test]
    fn interval_too_brief_changes_nothing() {
        let r = registrar();
        reg(&r, &["<sip:alice@10.0.0.1>"], "", "c1", 1, T0).unwrap();
        let e = reg(
            &r,
            &["<sip:alice@10.0.0.2>", "<sip:alice@10.0.0.3>;expires=10"],
            "",
            "c1",
            2,
            T0,
        )
        .unwrap_err();
        assert_eq!((e.code(), e.reason()), (423, "Interval Too Brief"));
        assert_eq!(
            e.headers(),
            vec![(HeaderName::MinExpires, "60".to_string())]
        );
        assert_eq!(contacts(&r.lookup("alice", T0)), vec!["sip:alice@10.0.0.1"]);
    }

    #[test]
    fn max_clamp() {
        let r = registrar();
        let out = reg(
            &r,
            &["<sip:alice@10.0.0.1>"],
            "Expires: 86400\r\n",
            "c1",
            1,
            T0,
        )
        .unwrap();
        assert_eq!(out[0].expires_at, T0 + 3600);
        assert_eq!(
            out[0].contact_header(T0),
            "<sip:alice@10.0.0.1>;expires=3600"
        );
    }

    #[test]
    fn cseq_out_of_order_and_new_call_id() {
        let r = registrar();
        reg(&r, &["<sip:alice@10.0.0.1>"], "", "c1", 5, T0).unwrap();
        for cseq in [5, 4] {
            let e = reg(
                &r,
                &["<sip:alice@10.0.0.1>;expires=0"],
                "",
                "c1",
                cseq,
                T0 + 1,
            )
            .unwrap_err();
            assert_eq!((e.code(), e.reason()), (500, "Out Of Order"));
        }
        // An out-of-order contact fails the whole request.
        assert!(matches!(
            reg(
                &r,
                &["<sip:alice@10.0.0.2>", "<sip:alice@10.0.0.1>"],
                "",
                "c1",
                5,
                T0 + 1
            ),
            Err(RegisterError::OutOfOrder)
        ));
        assert_eq!(r.count(), 1);
        // A rebooted phone: new Call-ID, CSeq restarts at 1, replaces.
        let out = reg(
            &r,
            &["<sip:alice@10.0.0.1>"],
            "Expires: 120\r\n",
            "c2",
            1,
            T0 + 2,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].call_id.as_str(), out[0].cseq, out[0].expires_at),
            ("c2", 1, T0 + 122)
        );
        // The same contact twice in one request is one binding.
        let out = reg(
            &r,
            &["<sip:alice@10.0.0.1>", "<sip:alice@10.0.0.1>;expires=300"],
            "",
            "c2",
            2,
            T0 + 3,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].expires_at, T0 + 303);
    }

    #[test]
    fn instance_replaces_on_ip_change() {
        let r = registrar();
        let inst = ";+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1";
        reg(
            &r,
            &[&format!("<sip:alice@192.168.1.20:5060;ob>{inst}")],
            "",
            "c1",
            1,
            T0,
        )
        .unwrap();
        reg(&r, &["<sip:alice@10.0.0.9>"], "", "other-phone", 1, T0).unwrap();
        let out = reg(
            &r,
            &[&format!("<sip:alice@192.168.1.77:5062;ob>{inst}")],
            "",
            "c1",
            2,
            T0 + 5,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            contacts(&out),
            vec!["sip:alice@192.168.1.77:5062;ob", "sip:alice@10.0.0.9"]
        );
        assert_eq!(out[0].reg_id, Some(1));
        // A second flow (reg-id 2) of the same instance is another binding.
        let two = inst.replace("reg-id=1", "reg-id=2");
        let out = reg(
            &r,
            &[&format!("<sip:alice@192.168.1.77:5062;ob>{two}")],
            "",
            "c1",
            3,
            T0 + 6,
        )
        .unwrap();
        assert_eq!(out.len(), 3);
        // Removal by instance, whatever the URI.
        let out = reg(
            &r,
            &[&format!("<sip:alice@1.2.3.4>{inst};expires=0")],
            "",
            "c1",
            4,
            T0 + 7,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|b| b.reg_id != Some(1)));
    }

    #[test]
    fn too_many_contacts() {
        let r = Registrar::new(
            RegistrarConfig {
                max_contacts: 2,
                ..RegistrarConfig::default()
            },
            Arc::new(MemoryStore::new()),
        );
        reg(
            &r,
            &["<sip:alice@10.0.0.1>", "<sip:alice@10.0.0.2>"],
            "",
            "c1",
            1,
            T0,
        )
        .unwrap();
        let e = reg(&r, &["<sip:alice@10.0.0.3>"], "", "c3", 1, T0).unwrap_err();
        assert_eq!((e.code(), e.reason()), (403, "Too Many Contacts"));
        assert_eq!(r.count(), 2);
        // Replacing one within the same request is fine.
        let out = reg(
            &r,
            &["<sip:alice@10.0.0.1>;expires=0", "<sip:alice@10.0.0.3>"],
            "",
            "c1",
            2,
            T0 + 1,
        )
        .unwrap();
        assert_eq!(
            contacts(&out),
            vec!["sip:alice@10.0.0.3", "sip:alice@10.0.0.2"]
        );
        // Expired bindings do not count.
        let out = reg(
            &r,
            &["<sip:alice@10.0.0.4>", "<sip:alice@10.0.0.5>"],
            "",
            "c4",
            1,
            T0 + 4000,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn expiry() {
        let r = registrar();
        reg(
            &r,
            &[
                "<sip:alice@10.0.0.1>;expires=60",
                "<sip:alice@10.0.0.2>;expires=120",
            ],
            "",
            "c1",
            1,
            T0,
        )
        .unwrap();
        let msg = register_msg("bob", &["<sip:bob@10.0.0.3>;expires=60"], "", "b1", 1);
        r.register("bob", &msg, udp("203.0.113.8:5060"), T0, &BTreeMap::new())
            .unwrap();
        assert_eq!(r.lookup("alice", T0 + 59).len(), 2);
        // Expired at expires_at: lookup filters, the store still has it.
        assert_eq!(
            contacts(&r.lookup("alice", T0 + 60)),
            vec!["sip:alice@10.0.0.2"]
        );
        assert_eq!(r.count(), 3);
        assert_eq!(r.expire(T0 + 59), 0);
        assert_eq!(r.expire(T0 + 60), 2);
        assert_eq!(r.count(), 1);
        assert_eq!(r.store().aors(), vec!["alice".to_string()]);
        assert_eq!(r.expire(T0 + 60), 0);
        assert_eq!(r.expire(T0 + 500), 1);
        assert_eq!(r.count(), 0);
    }

    #[test]
    fn path_and_attrs_kept_per_binding() {
        let r = registrar();
        let mut attrs = BTreeMap::new();
        attrs.insert("tenant".to_string(), "acme".to_string());
        let msg = register_msg("alice", &["<sip:alice@192.168.1.20:5060>"], "", "c1", 1);
        let tcp = Path {
            transport: sip::transport::TransportKind::Tcp,
            conn: Some(17),
            ..udp("198.51.100.4:50123")
        };
        r.register("alice", &msg, tcp, T0, &attrs).unwrap();
        let msg = register_msg("alice", &["<sip:alice@192.168.1.30:5060>"], "", "c2", 1);
        r.register(
            "alice",
            &msg,
            udp("203.0.113.9:1024"),
            T0 + 1,
            &BTreeMap::new(),
        )
        .unwrap();
        let out = r.lookup("alice", T0 + 2);
        assert_eq!(out[0].path, udp("203.0.113.9:1024"));
        assert!(out[0].attrs.is_empty());
        assert_eq!(out[1].path, tcp);
        assert_eq!(out[1].attrs.get("tenant").map(String::as_str), Some("acme"));
        let t = out[1].target();
        assert_eq!(
            (t.addr, t.conn),
            (
                "198.51.100.4:50123".parse().unwrap(),
                Some(sip::transport::ConnId(17))
            )
        );
        // The core's AOR is the key, not the To user.
        let msg = register_msg("ALICE", &["<sip:alice@192.168.1.40>"], "", "c3", 1);
        r.register(
            "alice",
            &msg,
            udp("203.0.113.9:1025"),
            T0 + 3,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(r.lookup("alice", T0 + 3).len(), 3);
        assert!(r.lookup("ALICE", T0 + 3).is_empty());
    }

    #[test]
    fn store_failure_is_500() {
        struct Broken;
        impl LocationStore for Broken {
            fn get(&self, _: &str) -> Vec<Binding> {
                Vec::new()
            }
            fn put(&self, _: &str, _: &[Binding]) -> Result<(), crate::StoreError> {
                Err(crate::StoreError::Unavailable("down".into()))
            }
            fn aors(&self) -> Vec<String> {
                Vec::new()
            }
            fn len(&self) -> usize {
                0
            }
        }
        let r = Registrar::new(RegistrarConfig::default(), Arc::new(Broken));
        let e = reg(&r, &["<sip:alice@10.0.0.1>"], "", "c1", 1, T0).unwrap_err();
        assert_eq!((e.code(), e.reason()), (500, "Server Internal Error"));
    }

    #[test]
    fn survives_restart_with_file_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("location.jsonl");
        let before = {
            let r = Registrar::new(
                RegistrarConfig::default(),
                Arc::new(FileStore::open(&path, false).unwrap()),
            );
            reg(
                &r,
                &["<sip:alice@10.0.0.1>;q=0.5", "<sip:alice@10.0.0.2>"],
                "",
                "c1",
                1,
                T0,
            )
            .unwrap();
            reg(&r, &["<sip:alice@10.0.0.1>;expires=0"], "", "c1", 2, T0 + 1).unwrap();
            r.lookup("alice", T0 + 2)
        };
        let r = Registrar::new(
            RegistrarConfig::default(),
            Arc::new(FileStore::open(&path, false).unwrap()),
        );
        assert_eq!(r.lookup("alice", T0 + 2), before);
        // The CSeq rule holds across the restart.
        assert!(matches!(
            reg(&r, &["<sip:alice@10.0.0.2>"], "", "c1", 1, T0 + 3),
            Err(RegisterError::OutOfOrder)
        ));
        // expire() reaches the journal.
        assert_eq!(r.expire(T0 + 4000), 1);
        drop(r);
        assert!(FileStore::open(&path, false).unwrap().is_empty());
    }

    #[test]
    fn ok_headers_contacts_and_date() {
        let r = registrar();
        let out = reg(
            &r,
            &["<sip:alice@10.0.0.1>;q=0.5", "<sip:alice@10.0.0.2>"],
            "Expires: 600\r\n",
            "c1",
            1,
            784_111_777,
        )
        .unwrap();
        assert_eq!(
            ok_headers(&out, 784_111_777 + 100),
            vec![
                (
                    HeaderName::Contact,
                    "<sip:alice@10.0.0.2>;expires=500".to_string()
                ),
                (
                    HeaderName::Contact,
                    "<sip:alice@10.0.0.1>;expires=500;q=0.5".to_string()
                ),
                (
                    HeaderName::Date,
                    "Sun, 06 Nov 1994 08:51:17 GMT".to_string()
                ),
            ]
        );
        assert_eq!(
            ok_headers(&[], 784_111_777),
            vec![(
                HeaderName::Date,
                "Sun, 06 Nov 1994 08:49:37 GMT".to_string()
            )]
        );
    }
}
