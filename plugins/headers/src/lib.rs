//! Header normalisation: numbers to E.164, P-Asserted-Identity only from
//! trusted peers, unwanted headers removed. It decides nothing: the next
//! handler routes the call with these edits.
//!
//! Settings (all strings):
//!
//! - `country_code`: the country's calling code, e.g. `"49"`. Without it,
//!   national numbers (`030…`) stay as they are.
//! - `national_prefix`: the trunk prefix of national numbers (default
//!   `"0"`; `""` for none).
//! - `international_prefix`: the prefix of international numbers (default
//!   `"00"`).
//! - `trusted`: comma-separated source IPs whose P-Asserted-Identity is
//!   believed.
//! - `strip`: comma-separated header names to remove.
//!
//! For each call it rewrites the Request-URI user and the From user to
//! E.164 (`0301234` → `+49301234`, `0049301234` → `+49301234`; `+…` and
//! non-numbers such as `alice` stay), keeps only the first
//! P-Asserted-Identity of a trusted peer (its number in E.164, display
//! name and brackets kept) and removes every one from anyone else, removes
//! P-Preferred-Identity and the `strip` headers, and sets
//! `X-Normalised: 1`.

use std::net::IpAddr;

use tandem_plugin::{CallView, Route, Router, Settings, export_router, log, uri};

/// The plugin: reads its settings for each call and returns the edits.
pub struct Headers;

impl Router for Headers {
    fn on_invite(call: CallView) -> Route {
        let (config, warnings) = Config::from_settings(&Settings::load());
        for warning in warnings {
            log::warn(warning);
        }
        normalise(&call, &config)
    }
}

export_router!(Headers);

/// The P-Asserted-Identity header.
pub const PAI: &str = "P-Asserted-Identity";
/// The P-Preferred-Identity header.
pub const PPI: &str = "P-Preferred-Identity";

/// Headers Tandem writes itself and refuses to let a plugin edit.
const MANAGED: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Record-Route",
    "Route",
    "RSeq",
    "RAck",
    "Session-Expires",
];

/// The settings of the plugin, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The country calling code (digits), if set.
    pub country_code: Option<String>,
    /// The national trunk prefix (digits; empty: none).
    pub national_prefix: String,
    /// The international prefix (digits; empty: none).
    pub international_prefix: String,
    /// Source IPs whose P-Asserted-Identity is kept.
    pub trusted: Vec<IpAddr>,
    /// Header names to remove.
    pub strip: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            country_code: None,
            national_prefix: "0".to_owned(),
            international_prefix: "00".to_owned(),
            trusted: Vec::new(),
            strip: Vec::new(),
        }
    }
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// An IP address, IPv6 possibly in brackets.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let bare = s
        .strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse().ok()
}

impl Config {
    /// Reads the settings; what cannot be used is left at its default (or
    /// skipped) and explained in a warning.
    pub fn from_settings(settings: &Settings) -> (Self, Vec<String>) {
        let mut config = Self::default();
        let mut warnings = Vec::new();
        if let Some(cc) = settings.get("country_code").map(str::trim) {
            let cc = cc.strip_prefix('+').unwrap_or(cc);
            if !cc.is_empty() && is_digits(cc) {
                config.country_code = Some(cc.to_owned());
            } else {
                warnings.push(format!(
                    "country_code \"{cc}\" is not digits: national numbers stay as they are"
                ));
            }
        }
        for (key, field) in [
            ("national_prefix", &mut config.national_prefix),
            ("international_prefix", &mut config.international_prefix),
        ] {
            if let Some(prefix) = settings.get(key).map(str::trim) {
                if is_digits(prefix) {
                    *field = prefix.to_owned();
                } else {
                    warnings.push(format!(
                        "{key} \"{prefix}\" is not digits: using \"{field}\""
                    ));
                }
            }
        }
        for ip in list(settings.get("trusted").unwrap_or("")) {
            match parse_ip(ip) {
                Some(ip) => config.trusted.push(ip),
                None => warnings.push(format!("trusted \"{ip}\" is not an IP address: skipped")),
            }
        }
        for name in list(settings.get("strip").unwrap_or("")) {
            if MANAGED.iter().any(|m| m.eq_ignore_ascii_case(name)) {
                warnings.push(format!(
                    "strip \"{name}\": Tandem manages that header itself: skipped"
                ));
            } else {
                config.strip.push(name.to_owned());
            }
        }
        (config, warnings)
    }

    /// Whether P-Asserted-Identity from `source_ip` is believed.
    pub fn is_trusted(&self, source_ip: &str) -> bool {
        parse_ip(source_ip).is_some_and(|ip| self.trusted.contains(&ip))
    }
}

/// `number` in E.164 (`+` and digits), if it is a phone number this
/// config can place: `+…` as it is, the international prefix replaced by
/// `+`, the national prefix by `+` and the country code. Visual separators
/// (`-`, `.`, `(`, `)`) are dropped. `None` for anything else (names,
/// short extensions, national numbers without a country code).
pub fn to_e164(number: &str, config: &Config) -> Option<String> {
    let (plus, rest) = match number.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    if digits.is_empty() || !is_digits(&digits) {
        return None;
    }
    let e164 = if plus {
        digits
    } else if let Some(rest) = after_prefix(&digits, &config.international_prefix) {
        non_empty(rest)?.to_owned()
    } else if let Some(rest) = after_prefix(&digits, &config.national_prefix) {
        format!("{}{}", config.country_code.as_deref()?, non_empty(rest)?)
    } else {
        return None;
    };
    Some(format!("+{e164}"))
}

/// The digits after `prefix`, if it is set and `digits` starts with it.
fn after_prefix<'a>(digits: &'a str, prefix: &str) -> Option<&'a str> {
    digits.strip_prefix(prefix).filter(|_| !prefix.is_empty())
}

/// `s` unless it is empty (a prefix alone, "0" or "00", is no number).
fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// The first identity of a header value: a value may list several,
/// separated by commas outside quotes and angle brackets.
pub fn first_identity(value: &str) -> &str {
    let (mut quoted, mut escaped, mut in_brackets) = (false, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => in_brackets = true,
            '>' if !quoted => in_brackets = false,
            ',' if !quoted && !in_brackets => return value[..i].trim(),
            _ => {}
        }
    }
    value.trim()
}

/// An identity (name-addr or URI) with its user in E.164 where
/// [`to_e164`] can place it; else unchanged.
pub fn normalise_identity(identity: &str, config: &Config) -> String {
    uri::user(identity)
        .and_then(|user| to_e164(user, config))
        .and_then(|e164| uri::with_user(identity, &e164))
        .unwrap_or_else(|| identity.to_owned())
}

/// The edits for `call`, and `pass`.
pub fn normalise(call: &CallView, config: &Config) -> Route {
    let mut route = Route::pass();
    if let Some(ruri) = to_e164(&call.user, config)
        .filter(|e164| *e164 != call.user)
        .and_then(|e164| uri::with_user(&call.ruri, &e164))
    {
        route = route.set_ruri(ruri);
    }
    if let Some(from_user) = to_e164(&call.from_user, config).filter(|e164| *e164 != call.from_user)
    {
        route = route.set_from(Some(&from_user), None);
    }

    if config.is_trusted(&call.source_ip) {
        let mut pais = call.headers_named(PAI);
        if let Some(first) = pais.next() {
            let kept = normalise_identity(first_identity(first), config);
            if kept != first || pais.next().is_some() {
                route = route.set_header(PAI, kept);
            }
        }
    } else {
        route = route.remove_header(PAI);
    }
    route = route.remove_header(PPI);
    for name in &config.strip {
        route = route.remove_header(name.as_str());
    }
    route.set_header("X-Normalised", "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_plugin::{Decision, Edit, FromChange, Header};

    fn config(settings: &[(&str, &str)]) -> Config {
        let (config, warnings) = Config::from_settings(&settings.iter().copied().collect());
        assert!(warnings.is_empty(), "{warnings:?}");
        config
    }

    fn germany() -> Config {
        config(&[
            ("country_code", "49"),
            ("trusted", "192.0.2.10, 2001:db8::1"),
            ("strip", "X-Internal, X-Billing"),
        ])
    }

    fn call(user: &str, from_user: &str, source_ip: &str, headers: &[(&str, &str)]) -> CallView {
        CallView {
            user: user.into(),
            ruri: format!("sip:{user}@127.0.0.1:5060;user=phone"),
            from: format!("sip:{from_user}@192.0.2.10"),
            from_user: from_user.into(),
            from_name: "Alice".into(),
            to: format!("sip:{user}@127.0.0.1"),
            call_id: "c1".into(),
            source_ip: source_ip.into(),
            source_port: 5060,
            transport: "udp".into(),
            auth_user: None,
            headers: headers.iter().map(|(n, v)| Header::new(*n, *v)).collect(),
        }
    }

    #[test]
    fn e164() {
        let de = germany();
        let e = |n| to_e164(n, &de);
        assert_eq!(e("0301234").as_deref(), Some("+49301234"));
        assert_eq!(e("0049301234").as_deref(), Some("+49301234"));
        assert_eq!(e("0044201234").as_deref(), Some("+44201234"));
        assert_eq!(e("+49301234").as_deref(), Some("+49301234"));
        assert_eq!(e("030-123.4").as_deref(), Some("+49301234"));
        assert_eq!(e("+49 30").as_deref(), None);
        assert_eq!(e("alice"), None);
        assert_eq!(e("1000"), None);
        assert_eq!(e("0"), None);
        assert_eq!(e("00"), None);
        assert_eq!(e("+"), None);
        assert_eq!(e(""), None);
        assert_eq!(e("0301234;npdi"), None);

        let no_country = Config::default();
        assert_eq!(to_e164("0301234", &no_country), None);
        assert_eq!(
            to_e164("0049301234", &no_country).as_deref(),
            Some("+49301234")
        );

        // North America: "011" international, "1" national.
        let us = config(&[
            ("country_code", "1"),
            ("national_prefix", "1"),
            ("international_prefix", "011"),
        ]);
        assert_eq!(to_e164("12125550100", &us).as_deref(), Some("+12125550100"));
        assert_eq!(to_e164("01149301234", &us).as_deref(), Some("+49301234"));
    }

    #[test]
    fn settings() {
        let (config, warnings) = Config::from_settings(&Settings::from_iter([
            ("country_code", "+49"),
            ("national_prefix", ""),
            ("international_prefix", "x"),
            ("trusted", "192.0.2.1,,[2001:db8::2], host.example"),
            ("strip", "Via, X-A ,"),
        ]));
        assert_eq!(config.country_code.as_deref(), Some("49"));
        assert_eq!(config.national_prefix, "");
        assert_eq!(config.international_prefix, "00");
        assert_eq!(
            config.trusted,
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::2".parse().unwrap()
            ]
        );
        assert_eq!(config.strip, ["X-A"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(config.is_trusted("[2001:db8::2]"));
        assert!(config.is_trusted("2001:0db8::2"));
        assert!(!config.is_trusted("192.0.2.2"));
        assert!(!config.is_trusted("bogus"));
    }

    #[test]
    fn identities() {
        let de = germany();
        assert_eq!(
            first_identity("\"Doe, John\" <sip:030@h>, <tel:030>"),
            "\"Doe, John\" <sip:030@h>"
        );
        assert_eq!(first_identity(" <sip:a,b@h> "), "<sip:a,b@h>");
        assert_eq!(
            normalise_identity("\"Doe, John\" <sip:0301234@h;user=phone>", &de),
            "\"Doe, John\" <sip:+49301234@h;user=phone>"
        );
        assert_eq!(
            normalise_identity("<tel:0049301234>", &de),
            "<tel:+49301234>"
        );
        assert_eq!(normalise_identity("sip:alice@h", &de), "sip:alice@h");
    }

    #[test]
    fn trusted_peer_keeps_its_first_pai_in_e164() {
        let call = call(
            "0301234",
            "0891234",
            "192.0.2.10",
            &[
                ("P-Asserted-Identity", "\"Office\" <sip:0891234@192.0.2.10>"),
                ("P-Asserted-Identity", "<tel:0891234>"),
                ("P-Preferred-Identity", "<sip:999@h>"),
                ("X-Internal", "1"),
            ],
        );
        let route = normalise(&call, &germany());
        assert_eq!(route.decision, Decision::Pass);
        assert_eq!(
            route.edits,
            [
                Edit::SetRuri("sip:+49301234@127.0.0.1:5060;user=phone".into()),
                Edit::SetFrom(FromChange {
                    user: Some("+49891234".into()),
                    name: None
                }),
                Edit::SetHeader(Header::new(PAI, "\"Office\" <sip:+49891234@192.0.2.10>")),
                Edit::RemoveHeader(PPI.into()),
                Edit::RemoveHeader("X-Internal".into()),
                Edit::RemoveHeader("X-Billing".into()),
                Edit::SetHeader(Header::new("X-Normalised", "1")),
            ]
        );
    }

    #[test]
    fn untrusted_peer_loses_every_pai() {
        let call = call(
            "+49301234",
            "alice",
            "198.51.100.7",
            &[("p-asserted-identity", "<sip:+49891234@198.51.100.7>")],
        );
        let route = normalise(&call, &config(&[("country_code", "49")]));
        assert_eq!(
            route.edits,
            [
                Edit::RemoveHeader(PAI.into()),
                Edit::RemoveHeader(PPI.into()),
                Edit::SetHeader(Header::new("X-Normalised", "1")),
            ]
        );
        assert_eq!(route.decision, Decision::Pass);
    }

    #[test]
    fn a_normal_single_pai_is_left_alone() {
        let call = call(
            "1000",
            "1001",
            "2001:db8::1",
            &[("P-Asserted-Identity", "<sip:+49891234@h>")],
        );
        let route = normalise(&call, &germany());
        assert_eq!(
            route.edits,
            [
                Edit::RemoveHeader(PPI.into()),
                Edit::RemoveHeader("X-Internal".into()),
                Edit::RemoveHeader("X-Billing".into()),
                Edit::SetHeader(Header::new("X-Normalised", "1")),
            ]
        );
    }
}
