//! Least-cost routing: a serial dial over the gateways whose prefixes
//! match the dialled number, longest prefix first, then cheapest.
//!
//! Settings (all strings):
//!
//! - `rates`: one route per line, `PREFIX GATEWAY COST`
//!   (`49 127.0.0.1:5081 0.012`); blank lines and `#` comments are
//!   allowed, bad lines are logged and skipped.
//! - `max_targets`: at most this many gateways per call (default 3).
//! - `timeout_ms`: ring time per attempt (default: the host's).
//! - `no_route`: `"reject"` (404 No Route, the default) or `"pass"` (the
//!   next handler routes the call).
//!
//! The dial carries `X-LCR-Route: PREFIX` (the first choice's prefix), and
//! a busy or silent gateway fails over to the next one.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tandem_plugin::{CallView, Route, Router, Settings, export_router, kv, log};

/// The plugin: reads its settings for each call and routes it.
pub struct Lcr;

impl Router for Lcr {
    fn on_invite(call: CallView) -> Route {
        let settings = Settings::load();
        let (config, warnings) = Config::from_settings(&settings);
        // The table is read on every call (each runs in a fresh instance):
        // tell about bad lines once per Tandem process and set of
        // warnings, not per call (a reload with other bad lines tells
        // again).
        if !warnings.is_empty() && kv::incr(&warned_key(&warnings), 1) == Ok(1) {
            for warning in warnings {
                log::warn(warning);
            }
        }
        route(&call.user, &config)
    }
}

export_router!(Lcr);

/// The key-value key that marks `warnings` as told: FNV-1a of their text.
fn warned_key(warnings: &[String]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in warnings.iter().flat_map(|w| w.bytes().chain([b'\n'])) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("lcr:settings-warned:{hash:016x}")
}

/// One line of the rate table, borrowed from the settings' text (the
/// table is read on every call: no copies of its fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Rate<'a> {
    /// Digits the normalised number starts with.
    pub prefix: &'a str,
    /// `host:port` of the gateway (an IP address; IPv6 in brackets).
    pub gateway: &'a str,
    /// Cost per minute in billionths of the table's unit (any unit, the
    /// same for all lines): `0.012` is `12_000_000`. Fixed point, so costs
    /// compare exactly (and the plugin needs no float parser).
    pub cost: u64,
}

/// The settings of the plugin, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config<'a> {
    /// The rate table.
    pub rates: Vec<Rate<'a>>,
    /// At most this many gateways per call.
    pub max_targets: usize,
    /// Ring time per attempt (`None`: the host's default).
    pub timeout_ms: Option<u32>,
    /// Pass the call on (instead of a 404) when no prefix matches.
    pub pass_unrouted: bool,
}

/// `max_targets` when the setting is missing.
pub const DEFAULT_MAX_TARGETS: usize = 3;

impl Default for Config<'_> {
    fn default() -> Self {
        Self {
            rates: Vec::new(),
            max_targets: DEFAULT_MAX_TARGETS,
            timeout_ms: None,
            pass_unrouted: false,
        }
    }
}

impl<'a> Config<'a> {
    /// Reads the settings; what cannot be used is left at its default and
    /// explained in a warning.
    pub fn from_settings(settings: &'a Settings) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let (rates, bad) = parse_rates(settings.get("rates").unwrap_or(""));
        warnings.extend(bad.iter().map(ToString::to_string));
        let mut config = Self {
            rates,
            ..Self::default()
        };
        if let Some(max) = settings.get("max_targets") {
            match max.trim().parse::<usize>() {
                Ok(n) if n > 0 => config.max_targets = n,
                _ => warnings.push(format!(
                    "max_targets \"{max}\" is not a positive integer: using {DEFAULT_MAX_TARGETS}"
                )),
            }
        }
        if let Some(timeout) = settings.get("timeout_ms") {
            match timeout.trim().parse::<u32>() {
                Ok(ms) if ms > 0 => config.timeout_ms = Some(ms),
                _ => warnings.push(format!(
                    "timeout_ms \"{timeout}\" is not a positive integer: using the host's default"
                )),
            }
        }
        match settings.get("no_route").map(str::trim) {
            None | Some("reject") => {}
            Some("pass") => config.pass_unrouted = true,
            Some(other) => warnings.push(format!(
                "no_route \"{other}\" is neither \"reject\" nor \"pass\": rejecting"
            )),
        }
        if config.rates.is_empty() {
            warnings.push("the rate table is empty: no call has a route".to_owned());
        }
        (config, warnings)
    }
}

/// A line of the rate table that was skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based line number in `rates`.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rates line {} skipped ({}): \"{}\"",
            self.line, self.reason, self.text
        )
    }
}

/// Parses the rate table: `PREFIX GATEWAY COST` per line, separated by
/// spaces or tabs; `#` starts a comment. A prefix may start with `+`
/// (dropped). Returns the good routes in table order and the lines it
/// skipped.
///
/// The table's syntax is ASCII (a comment may hold any text) and it is
/// read on every call (each runs in a fresh instance), so it is scanned
/// byte by byte: `str::lines`, `split_whitespace` and `trim` decode every
/// character for Unicode rules, which made the parse over a quarter of
/// the plugin's own instructions per call.
pub fn parse_rates(table: &str) -> (Vec<Rate<'_>>, Vec<BadLine>) {
    let mut rates = Vec::new();
    let mut bad = Vec::new();
    for (index, raw) in ascii_lines(table).enumerate() {
        let content = match raw.bytes().position(|b| b == b'#') {
            Some(comment) => &raw[..comment],
            None => raw,
        }
        .trim_ascii();
        if content.is_empty() {
            continue;
        }
        match parse_line(content) {
            Ok(rate) => rates.push(rate),
            Err(reason) => bad.push(BadLine {
                line: index + 1,
                text: raw.trim_ascii().to_owned(),
                reason,
            }),
        }
    }
    (rates, bad)
}

/// The lines of `text`, split at each `\n` (a `\r` before it is left to
/// the caller's trim).
fn ascii_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let line = rest?;
        match line.bytes().position(|b| b == b'\n') {
            Some(end) => {
                rest = Some(&line[end + 1..]);
                Some(&line[..end])
            }
            None => {
                rest = None;
                Some(line)
            }
        }
    })
}

fn parse_line(line: &str) -> Result<Rate<'_>, &'static str> {
    let mut fields = line.split_ascii_whitespace();
    let (Some(prefix), Some(gateway), Some(cost), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("want PREFIX GATEWAY COST");
    };
    let prefix = prefix.strip_prefix('+').unwrap_or(prefix);
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the prefix is not digits");
    }
    if !is_gateway(gateway) {
        return Err("the gateway is not IP or IP:PORT");
    }
    let cost = parse_cost(cost).ok_or("the cost is not a decimal number (at most 9 decimals)")?;
    Ok(Rate {
        prefix,
        gateway,
        cost,
    })
}

/// A non-negative decimal (`12`, `0.012`, `.5`) in billionths.
fn parse_cost(s: &str) -> Option<u64> {
    const DECIMALS: usize = 9;
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0
        || !all_digits(whole)
        || !all_digits(fraction)
        || fraction.len() > DECIMALS
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..DECIMALS {
        nanos *= 10;
    }
    whole.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Whether `s` is an IP address with an optional port, as a dial target
/// needs (Tandem does no DNS): `192.0.2.1`, `192.0.2.1:5060`, `[2001:db8::1]`
/// or `[2001:db8::1]:5060`.
fn is_gateway(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() || s.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    s.strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok())
}

/// The dialled number without a leading `+` or `00`.
pub fn normalise_number(user: &str) -> &str {
    user.strip_prefix('+')
        .or_else(|| user.strip_prefix("00"))
        .unwrap_or(user)
}

/// The routes for `number` (normalised): every matching prefix, longest
/// first, then cheapest, then in table order; one route per gateway; at
/// most `max` of them.
pub fn choose<'r, 'a>(rates: &'r [Rate<'a>], number: &str, max: usize) -> Vec<&'r Rate<'a>> {
    let mut matches: Vec<&Rate> = rates
        .iter()
        .filter(|r| number.starts_with(r.prefix))
        .collect();
    // Stable: equal prefix length and cost keep the table's order.
    matches.sort_by(|a, b| {
        b.prefix
            .len()
            .cmp(&a.prefix.len())
            .then(a.cost.cmp(&b.cost))
    });
    let mut chosen: Vec<&Rate> = Vec::new();
    for rate in matches {
        if chosen.len() == max {
            break;
        }
        if !chosen.iter().any(|c| c.gateway == rate.gateway) {
            chosen.push(rate);
        }
    }
    chosen
}

/// `sip:NUMBER@GATEWAY`, put together without `format!` (whose dynamic
/// calls cost a wasm instance a table entry each on first use).
fn target(number: &str, gateway: &str) -> String {
    let mut uri = String::with_capacity(5 + number.len() + gateway.len());
    uri.push_str("sip:");
    uri.push_str(number);
    uri.push('@');
    uri.push_str(gateway);
    uri
}

/// The answer to a call to `user`: a serial dial over the chosen
/// gateways, or the configured answer when none matches.
pub fn route(user: &str, config: &Config) -> Route {
    let number = normalise_number(user);
    let chosen = if number.bytes().all(|b| b.is_ascii_digit()) {
        choose(&config.rates, number, config.max_targets)
    } else {
        Vec::new()
    };
    let Some(first) = chosen.first() else {
        return if config.pass_unrouted {
            Route::pass()
        } else {
            Route::reject(404, "No Route")
        };
    };
    let mut route = Route::dial(chosen.iter().map(|r| target(number, r.gateway)))
        .serial()
        .with_header("X-LCR-Route", first.prefix);
    if let Some(ms) = config.timeout_ms {
        route = route.timeout_ms(ms);
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_plugin::{Decision, DialMode, Header, Reject};

    const TABLE: &str = "
        # prefix  gateway          cost
        49        127.0.0.1:5081   0.012
        4930      127.0.0.1:5082   0.008   # Berlin
        4930      127.0.0.1:5083   0.005
        49        127.0.0.1:5083   0.010
        +1        [::1]:5090       0.020
        1212      [::1]            0.030

        44 127.0.0.1:5084
        33 gw.example 1.5 extra
        x1 127.0.0.1:5085 0.1
        7 sip:a@127.0.0.1 0.1
        7 gw.example:5060 0.1
        8 127.0.0.1:5086 cheap
        9 127.0.0.1:5087 -1
    ";

    fn config(settings: &[(&str, &str)]) -> (Config<'static>, Vec<String>) {
        // The parsed table borrows the settings: keep them for the test.
        Config::from_settings(Box::leak(Box::new(settings.iter().copied().collect())))
    }

    fn targets(route: &Route) -> Vec<&str> {
        match &route.decision {
            Decision::Dial(d) => d.targets.iter().map(|t| t.uri.as_str()).collect(),
            other => panic!("not a dial: {other:?}"),
        }
    }

    #[test]
    fn parses_the_table_and_reports_bad_lines() {
        let (rates, bad) = parse_rates(TABLE);
        assert_eq!(
            rates,
            [
                ("49", "127.0.0.1:5081", 12_000_000),
                ("4930", "127.0.0.1:5082", 8_000_000),
                ("4930", "127.0.0.1:5083", 5_000_000),
                ("49", "127.0.0.1:5083", 10_000_000),
                ("1", "[::1]:5090", 20_000_000),
                ("1212", "[::1]", 30_000_000),
            ]
            .map(|(prefix, gateway, cost)| Rate {
                prefix,
                gateway,
                cost
            })
        );
        let lines: Vec<(usize, &str)> = bad.iter().map(|b| (b.line, b.reason)).collect();
        assert_eq!(
            lines,
            [
                (10, "want PREFIX GATEWAY COST"),
                (11, "want PREFIX GATEWAY COST"),
                (12, "the prefix is not digits"),
                (13, "the gateway is not IP or IP:PORT"),
                (14, "the gateway is not IP or IP:PORT"),
                (15, "the cost is not a decimal number (at most 9 decimals)"),
                (16, "the cost is not a decimal number (at most 9 decimals)"),
            ]
        );
        assert_eq!(
            bad[0].to_string(),
            "rates line 10 skipped (want PREFIX GATEWAY COST): \"44 127.0.0.1:5084\""
        );
    }

    #[test]
    fn tabs_and_crlf_line_ends_are_whitespace() {
        let (rates, bad) =
            parse_rates("49\t127.0.0.1:5081\t0.012\r\n# note\r\n\r\n1 [::1] 1 # x\r");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rates.len(), 2);
        assert_eq!(
            (rates[0].prefix, rates[0].gateway),
            ("49", "127.0.0.1:5081")
        );
        assert_eq!((rates[1].prefix, rates[1].gateway), ("1", "[::1]"));
        // A comment may hold any text.
        let (rates, bad) = parse_rates("49 127.0.0.1:5081 0.012 # Zürich, für Ä\n");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rates.len(), 1);
    }

    #[test]
    fn other_warnings_are_told_under_another_key() {
        let one = warned_key(&["rates line 2 skipped".to_owned()]);
        assert_eq!(one, warned_key(&["rates line 2 skipped".to_owned()]));
        assert_ne!(one, warned_key(&["rates line 3 skipped".to_owned()]));
        assert!(one.starts_with("lcr:settings-warned:"));
    }

    #[test]
    fn costs_are_fixed_point() {
        assert_eq!(parse_cost("0.012"), Some(12_000_000));
        assert_eq!(parse_cost("12"), Some(12_000_000_000));
        assert_eq!(parse_cost(".5"), Some(500_000_000));
        assert_eq!(parse_cost("1."), Some(1_000_000_000));
        assert_eq!(parse_cost("0.000000001"), Some(1));
        for bad in [
            "",
            ".",
            "-1",
            "1e-3",
            "0.0000000001",
            "1.2.3",
            "NaN",
            "99999999999999999999",
        ] {
            assert_eq!(parse_cost(bad), None, "{bad}");
        }
    }

    #[test]
    fn normalises_the_number() {
        assert_eq!(normalise_number("+4930123"), "4930123");
        assert_eq!(normalise_number("004930123"), "4930123");
        assert_eq!(normalise_number("030123"), "030123");
        assert_eq!(normalise_number("alice"), "alice");
    }

    #[test]
    fn longest_prefix_then_cheapest_then_deduplicated() {
        let (rates, _) = parse_rates(TABLE);
        let chosen: Vec<(&str, &str)> = choose(&rates, "4930123", 10)
            .iter()
            .map(|r| (r.prefix, r.gateway))
            .collect();
        // 5083 is cheapest for 4930 and appears again for 49: tried once.
        assert_eq!(
            chosen,
            [
                ("4930", "127.0.0.1:5083"),
                ("4930", "127.0.0.1:5082"),
                ("49", "127.0.0.1:5081")
            ]
        );
        assert_eq!(choose(&rates, "4930123", 2).len(), 2);
        assert!(choose(&rates, "3312", 3).is_empty());
    }

    #[test]
    fn routes_a_serial_dial_with_the_first_prefix() {
        let (config, warnings) = config(&[
            ("rates", TABLE),
            ("max_targets", "2"),
            ("timeout_ms", "8000"),
        ]);
        assert_eq!(warnings.len(), 7, "{warnings:?}");
        let berlin = route("+4930123", &config);
        assert_eq!(
            targets(&berlin),
            ["sip:4930123@127.0.0.1:5083", "sip:4930123@127.0.0.1:5082"]
        );
        let Decision::Dial(dial) = &berlin.decision else {
            unreachable!()
        };
        assert_eq!(dial.mode, DialMode::Serial);
        assert_eq!(dial.timeout_ms, Some(8000));
        assert_eq!(dial.headers, [Header::new("X-LCR-Route", "4930")]);
        assert!(berlin.edits.is_empty());

        let us = route("0012125550100", &config);
        assert_eq!(
            targets(&us),
            ["sip:12125550100@[::1]", "sip:12125550100@[::1]:5090"]
        );
    }

    #[test]
    fn no_route_rejects_or_passes() {
        let (reject, _) = config(&[("rates", TABLE)]);
        let (pass, _) = config(&[("rates", TABLE), ("no_route", "pass")]);
        let not_found = Decision::Reject(Reject {
            code: 404,
            reason: "No Route".into(),
        });
        assert_eq!(route("3312345", &reject).decision, not_found);
        assert_eq!(route("alice", &reject).decision, not_found);
        assert_eq!(route("49ab", &reject).decision, not_found);
        assert_eq!(route("3312345", &pass), Route::pass());
    }

    #[test]
    fn bad_settings_fall_back_to_defaults() {
        let (config, warnings) = config(&[
            ("max_targets", "0"),
            ("timeout_ms", "soon"),
            ("no_route", "maybe"),
        ]);
        assert_eq!(config, Config::default());
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[3].contains("empty"));
    }
}
