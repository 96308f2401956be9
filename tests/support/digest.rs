//! Digest authentication for the test UA: the challenge of a 401/407, a
//! request with credentials answering it, and a request sent for its final
//! response.

use super::ua::{Incoming, Ua};
use super::{Msg, Req, unique};
use sip::auth::{Algorithm, Challenge};

/// The challenge for `algorithm` in a 401 (WWW-Authenticate) or 407
/// (Proxy-Authenticate).
pub(crate) fn challenge(resp: &Msg, algorithm: Algorithm) -> Challenge {
    let header = if resp.status() == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    resp.header_all(header)
        .into_iter()
        .filter_map(|v| Challenge::parse(v).ok())
        .find(|c| c.algorithm == algorithm)
        .unwrap_or_else(|| panic!("no {algorithm:?} challenge in:\n{}", resp.text()))
}

/// `req` with credentials answering `c` (nonce count `nc`): Authorization
/// for a REGISTER, Proxy-Authorization otherwise.
pub(crate) fn authorized(req: Req, c: &Challenge, user: &str, password: &str, nc: u32) -> Req {
    let header = if req.method == "REGISTER" {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    let value = c.answer(&req.method, &req.uri, user, password, nc, &unique("cn"));
    req.set(header, &value)
}

/// Sends `req` from `ua` and returns its final response.
pub(crate) fn send(req: &Req, ua: &mut Ua) -> Incoming {
    ua.send_req(req);
    ua.expect_final(req)
}
