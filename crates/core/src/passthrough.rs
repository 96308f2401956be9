//! Which headers of one leg's request travel to the other leg. Topology
//! hiding: nothing that names the A side's hosts (Via, Contact,
//! Record-Route, Route) or belongs to one hop or one dialog (tags, CSeq,
//! Call-ID, Max-Forwards, extensions negotiated per leg) crosses over.

use sip::message::{HeaderName, Headers, Message};

/// True for headers copied from one leg's request to the other's.
pub(crate) fn crosses_legs(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Other(_)
            | HeaderName::Subject
            | HeaderName::Priority
            | HeaderName::PAssertedIdentity
            | HeaderName::PPreferredIdentity
            | HeaderName::Privacy
            | HeaderName::AlertInfo
            | HeaderName::CallInfo
            | HeaderName::Organization
            | HeaderName::Event
            | HeaderName::SubscriptionState
            | HeaderName::AllowEvents
            | HeaderName::InReplyTo
            | HeaderName::ReplyTo
            | HeaderName::Date
            | HeaderName::Reason
            | HeaderName::Warning
            | HeaderName::ContentDisposition
            | HeaderName::ContentLanguage
            | HeaderName::ContentEncoding
            | HeaderName::Accept
            | HeaderName::AcceptEncoding
            | HeaderName::AcceptLanguage
            | HeaderName::ErrorInfo
            | HeaderName::RetryAfter
    )
}

/// Copies the headers that cross legs from `from` into `to`.
pub(crate) fn copy_headers(from: &Message, to: &mut Headers) {
    for h in from.headers.iter() {
        if crosses_legs(&h.name) {
            to.push(h.name.clone(), h.value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_headers_never_cross() {
        for n in [
            "Via",
            "Contact",
            "Record-Route",
            "Route",
            "Call-ID",
            "CSeq",
            "From",
            "To",
        ] {
            assert!(!crosses_legs(&HeaderName::new(n)), "{n}");
        }
        assert!(crosses_legs(&HeaderName::new("X-Account")));
    }
}
