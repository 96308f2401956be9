//! The digest response computed from HA1, as a server with stored
//! `H(user:realm:password)` values needs it (RFC 7616 §3.4.1–3.4.2).

use sip::auth::Algorithm;

/// Everything the response depends on besides HA1.
#[derive(Debug, Clone, Copy)]
pub struct DigestParams<'a> {
    /// The algorithm (`-sess` variants derive the session HA1 here).
    pub algorithm: Algorithm,
    /// The server nonce.
    pub nonce: &'a str,
    /// The client nonce (with qop or `-sess`).
    pub cnonce: &'a str,
    /// The nonce count exactly as the client sent it (with qop).
    pub nc: &'a str,
    /// `Some("auth")`, or `None` for the RFC 2069 computation.
    pub qop: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The digest-uri as the client sent it.
    pub uri: &'a str,
}

/// HA1 = `H(username:realm:password)`, lower-case hex, as a directory stores
/// it (the base hash for the `-sess` variants too).
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

fn is_sess(a: Algorithm) -> bool {
    matches!(a, Algorithm::Md5Sess | Algorithm::Sha256Sess)
}

/// The `response` value from HA1 (lower-case hex of
/// `H(username:realm:password)` for the algorithm's hash).
pub fn response_from_ha1(ha1: &str, p: &DigestParams<'_>) -> String {
    let a = p.algorithm;
    let ha1 = if is_sess(a) {
        a.hash(&format!("{ha1}:{}:{}", p.nonce, p.cnonce))
    } else {
        ha1.to_string()
    };
    let ha2 = a.hash(&format!("{}:{}", p.method, p.uri));
    match p.qop {
        Some(q) => a.hash(&format!(
            "{ha1}:{}:{}:{}:{q}:{ha2}",
            p.nonce, p.nc, p.cnonce
        )),
        None => a.hash(&format!("{ha1}:{}:{ha2}", p.nonce)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::auth::{DigestInput, digest_response};

    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616(algorithm: Algorithm) -> String {
        let h = ha1(
            algorithm,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        response_from_ha1(
            &h,
            &DigestParams {
                algorithm,
                nonce: NONCE,
                cnonce: CNONCE,
                nc: "00000001",
                qop: Some("auth"),
                method: "GET",
                uri: "/dir/index.html",
            },
        )
    }

    #[test]
    fn rfc7616_vectors_through_ha1() {
        // RFC 7616 §3.9.1.
        assert_eq!(
            rfc7616(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(rfc7616(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn agrees_with_the_client_side() {
        for algorithm in [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ] {
            for qop in [Some("auth"), None] {
                let client = digest_response(&DigestInput {
                    algorithm,
                    username: "alice",
                    realm: "tandem",
                    password: "s3cret",
                    nonce: "n0",
                    cnonce: "c0",
                    nc: 0x2a,
                    qop,
                    method: "REGISTER",
                    uri: "sip:tandem.test",
                });
                let server = response_from_ha1(
                    &ha1(algorithm, "alice", "tandem", "s3cret"),
                    &DigestParams {
                        algorithm,
                        nonce: "n0",
                        cnonce: "c0",
                        nc: "0000002a",
                        qop,
                        method: "REGISTER",
                        uri: "sip:tandem.test",
                    },
                );
                assert_eq!(client, server, "{algorithm:?} {qop:?}");
            }
        }
    }
}
