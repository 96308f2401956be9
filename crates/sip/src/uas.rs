//! The request checks every UAS makes before it processes a new request
//! (RFC 3261 §8.2): method, URI scheme, Max-Forwards, extensions and
//! content. A failed check is a [`Rejection`] to send as the final response.

use crate::message::{HeaderName, Message, Method, Scheme};

/// What this endpoint supports; the checks answer against it.
#[derive(Debug, Clone)]
pub struct UasPolicy {
    /// Methods this endpoint accepts (advertised in Allow).
    pub allow: Vec<Method>,
    /// Option tags this endpoint supports (advertised in Supported).
    pub supported: Vec<String>,
    /// Body types accepted in session-carrying requests (INVITE, UPDATE,
    /// PRACK, ACK), lower-case `type/subtype`.
    pub accept: Vec<String>,
}

impl Default for UasPolicy {
    fn default() -> UasPolicy {
        UasPolicy {
            allow: vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Options,
                Method::Info,
                Method::Update,
                Method::Prack,
                Method::Message,
                Method::Notify,
                Method::Refer,
                Method::Register,
            ],
            supported: Vec::new(),
            accept: vec!["application/sdp".into(), "multipart/mixed".into()],
        }
    }
}

impl UasPolicy {
    /// The Allow header value.
    pub fn allow_value(&self) -> String {
        self.allow
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The Supported header value.
    pub fn supported_value(&self) -> String {
        self.supported.join(", ")
    }

    /// The Accept header value.
    pub fn accept_value(&self) -> String {
        self.accept.join(", ")
    }

    /// Headers an OPTIONS answer carries (RFC 3261 §11.2).
    pub fn capability_headers(&self) -> Vec<(HeaderName, String)> {
        vec![
            (HeaderName::Allow, self.allow_value()),
            (HeaderName::Accept, self.accept_value()),
            (HeaderName::AcceptEncoding, "identity".into()),
            (HeaderName::AcceptLanguage, "en".into()),
            (HeaderName::Supported, self.supported_value()),
        ]
    }
}

/// A final response that ends a request before it is processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers the response must carry (Allow, Unsupported, Accept, ...).
    pub headers: Vec<(HeaderName, String)>,
}

impl Rejection {
    fn new(code: u16, reason: &str) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: HeaderName, value: String) -> Rejection {
        self.headers.push((name, value));
        self
    }

    /// Builds the response to `req`.
    pub fn response_to(&self, req: &Message, to_tag: &str) -> Message {
        let mut resp = Message::response_to(req, self.code, &self.reason, Some(to_tag));
        for (name, value) in &self.headers {
            resp.headers.push(name.clone(), value.clone());
        }
        resp
    }
}

fn carries_session(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite | Method::Update | Method::Prack | Method::Ack
    )
}

/// Checks a new request (not ACK or CANCEL, which match transactions).
pub fn precheck(req: &Message, policy: &UasPolicy) -> Result<(), Rejection> {
    let Some(method) = req.method() else {
        return Ok(());
    };
    // §8.2.1 method inspection.
    if !policy.allow.contains(method) {
        let rej = if method.is_other() {
            Rejection::new(501, "Not Implemented")
        } else {
            Rejection::new(405, "Method Not Allowed")
        };
        return Err(rej.with(HeaderName::Allow, policy.allow_value()));
    }
    if req.cseq().is_none_or(|c| &c.method != method) {
        return Err(Rejection::new(
            400,
            "Bad Request (CSeq method does not match)",
        ));
    }
    // §8.2.2.1 Request-URI scheme.
    if req
        .uri()
        .is_some_and(|u| matches!(u.scheme, Scheme::Other(_)))
    {
        return Err(Rejection::new(416, "Unsupported URI Scheme"));
    }
    // §16.3 item 3: a request that would be forwarded with Max-Forwards 0.
    // OPTIONS is answered by this endpoint itself.
    if req.max_forwards() == Some(0) && *method != Method::Options {
        return Err(Rejection::new(483, "Too Many Hops"));
    }
    // §8.2.2.3 Require.
    if !matches!(method, Method::Cancel | Method::Ack) {
        let unsupported: Vec<String> = req
            .tokens(&HeaderName::Require)
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .filter(|t| !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            return Err(Rejection::new(420, "Bad Extension")
                .with(HeaderName::Unsupported, unsupported.join(", ")));
        }
    }
    // §8.2.3 content processing.
    if carries_session(method) && !req.body.is_empty() {
        if req
            .tokens(&HeaderName::ContentEncoding)
            .any(|e| !e.eq_ignore_ascii_case(b"identity"))
        {
            return Err(Rejection::new(415, "Unsupported Media Type")
                .with(HeaderName::AcceptEncoding, "identity".into()));
        }
        let ctype = req.content_type().unwrap_or_default();
        if !policy.accept.contains(&ctype) {
            return Err(Rejection::new(415, "Unsupported Media Type")
                .with(HeaderName::Accept, policy.accept_value()));
        }
    }
    // RFC 3261 §21.4.7: the answer would be SDP, which the caller does not
    // accept.
    if *method == Method::Invite && req.headers.get(&HeaderName::Accept).is_some() {
        let ok = req.tokens(&HeaderName::Accept).any(|t| {
            let t = t.split(|&b| b == b';').next().unwrap_or_default();
            let t = crate::message::text::trim(t);
            t.eq_ignore_ascii_case(b"application/sdp")
                || t.eq_ignore_ascii_case(b"application/*")
                || t == b"*/*"
        });
        if !ok {
            return Err(Rejection::new(406, "Not Acceptable").with(
                HeaderName::Warning,
                r#"399 tandem "only application/sdp""#.into(),
            ));
        }
    }
    Ok(())
}
