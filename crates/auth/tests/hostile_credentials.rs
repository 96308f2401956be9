//! Whatever a peer puts in Authorization / Proxy-Authorization, the check
//! answers (challenge, 403, block) and never panics; only the right
//! digest authenticates.

use auth::{AuthConfig, Authenticator, Directory, Kind, Secret, User, Verdict};
use proptest::prelude::*;
use sip::auth::Algorithm;
use sip::message::Message;
use sip::message::parse_datagram;
use std::net::IpAddr;
use std::time::Instant;

fn authenticator() -> Authenticator {
    let users = vec![User {
        name: "alice".into(),
        secret: Secret::Password("wonderland".into()),
    }];
    Authenticator::new(
        AuthConfig {
            realm: "tandem.test".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            max_failures: 0,
            ..AuthConfig::default()
        },
        Directory::new(users).expect("directory"),
    )
}

fn register_with(header: &str, value: &str) -> Option<Message> {
    let text = format!(
        "REGISTER sip:tandem.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@tandem.test>;tag=1\r\nTo: <sip:alice@tandem.test>\r\nCall-ID: x@192.0.2.7\r\nCSeq: 1 REGISTER\r\n{header}: {value}\r\nContent-Length: 0\r\n\r\n"
    );
    parse_datagram(bytes::Bytes::from(text)).ok()
}

/// Digest-looking parameter lists built from pieces peers get wrong.
fn credentials() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "nc",
        "qop",
        "opaque",
        "",
        "x",
    ]);
    let value = prop_oneof![
        "[ -~]{0,40}",
        Just("\"".to_string()),
        Just("\"unterminated".to_string()),
        Just("ffffffff".to_string()),
        Just("00000000".to_string()),
        Just("zzzzzzzzzzzz".to_string()),
        Just("SHA-256".to_string()),
        Just("MD5-sess".to_string()),
        Just("auth-int".to_string()),
        Just("\"tandem.test\"".to_string()),
        Just("\"alice\"".to_string()),
    ];
    let scheme = prop::sample::select(vec!["Digest ", "digest ", "Basic ", "", "Digest"]);
    (scheme, prop::collection::vec((key, value), 0..12)).prop_map(|(scheme, params)| {
        let list: Vec<String> = params
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{scheme}{}", list.join(", "))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hostile_credentials_never_authenticate_or_panic(value in credentials(), proxy in any::<bool>()) {
        let a = authenticator();
        let (header, kind) = match proxy {
            true => ("Proxy-Authorization", Kind::Proxy),
            false => ("Authorization", Kind::Www),
        };
        if let Some(request) = register_with(header, &value) {
            let source: IpAddr = "192.0.2.7".parse().expect("address");
            let verdict = a.check(&request, source, kind, Instant::now());
            prop_assert!(
                !matches!(verdict, Verdict::Authenticated { .. } | Verdict::Open | Verdict::Trusted),
                "{value} -> {verdict:?}"
            );
        }
    }
}
