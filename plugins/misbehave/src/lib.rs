//! A test plugin that misbehaves on purpose, to check that Tandem contains
//! a bad plugin to the one call. What it does depends on the start of the
//! dialled user:
//!
//! - `loop…`: spins forever (the CPU limit must stop it);
//! - `bomb…`: allocates memory without end (the memory limit must stop it);
//! - `trap…`: panics, which traps;
//! - `badcode…`: rejects with code 99, which the host must refuse;
//! - anything else: passes, with the edit `X-Misbehave: no`.
//!
//! `on_hangup` logs `hangup CALL-ID CODE` at info.

use std::hint::black_box;

use tandem_plugin::{CallView, DialResult, Route, Router, export_router, log};

/// The plugin.
pub struct Misbehave;

impl Router for Misbehave {
    fn on_invite(call: CallView) -> Route {
        route(&call.user)
    }

    fn on_hangup(call_id: String, outcome: DialResult) {
        log::info(hangup_line(&call_id, &outcome));
    }
}

export_router!(Misbehave);

/// What the plugin does for a dialled user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Spin forever.
    Loop,
    /// Allocate memory without end.
    Bomb,
    /// Panic (a trap).
    Trap,
    /// Reject with the invalid code 99.
    BadCode,
    /// Behave: pass, with `X-Misbehave: no`.
    Pass,
}

impl Behaviour {
    /// The behaviour chosen by the start of `user`.
    pub fn of(user: &str) -> Self {
        [
            ("loop", Self::Loop),
            ("bomb", Self::Bomb),
            ("trap", Self::Trap),
            ("badcode", Self::BadCode),
        ]
        .into_iter()
        .find(|(prefix, _)| user.starts_with(prefix))
        .map_or(Self::Pass, |(_, behaviour)| behaviour)
    }
}

/// The answer to a call to `user`, if the plugin answers at all (it does
/// not return for `loop…`, `bomb…` and `trap…`).
pub fn route(user: &str) -> Route {
    match Behaviour::of(user) {
        Behaviour::Loop => spin(),
        Behaviour::Bomb => hoard(),
        Behaviour::Trap => panic!("misbehave: trap requested by \"{user}\""),
        Behaviour::BadCode => Route::reject(99, "Bad Code"),
        Behaviour::Pass => Route::pass().set_header("X-Misbehave", "no"),
    }
}

/// The info line `on_hangup` logs.
pub fn hangup_line(call_id: &str, outcome: &DialResult) -> String {
    format!("hangup {call_id} {}", outcome.code)
}

/// Spins forever; `black_box` keeps the loop from being optimised away.
fn spin() -> ! {
    let mut turns = 0u64;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB after 1 MiB, keeping every one, until the
/// allocator fails (an abort, so a trap).
fn hoard() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = black_box(vec![0xA5u8; 1 << 20]);
        hoard.push(chunk);
        black_box(&mut hoard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_plugin::{Decision, Reject};

    #[test]
    fn behaviour_by_prefix() {
        assert_eq!(Behaviour::of("loop"), Behaviour::Loop);
        assert_eq!(Behaviour::of("loop1"), Behaviour::Loop);
        assert_eq!(Behaviour::of("bomb42"), Behaviour::Bomb);
        assert_eq!(Behaviour::of("trap"), Behaviour::Trap);
        assert_eq!(Behaviour::of("badcode7"), Behaviour::BadCode);
        assert_eq!(Behaviour::of("1000"), Behaviour::Pass);
        assert_eq!(Behaviour::of("xloop"), Behaviour::Pass);
        assert_eq!(Behaviour::of(""), Behaviour::Pass);
    }

    #[test]
    fn answers() {
        assert_eq!(
            route("badcode7").decision,
            Decision::Reject(Reject {
                code: 99,
                reason: "Bad Code".into()
            })
        );
        assert_eq!(route("1000"), Route::pass().set_header("X-Misbehave", "no"));
    }

    #[test]
    #[should_panic(expected = "trap requested")]
    fn trap_panics() {
        route("trap");
    }

    #[test]
    fn hangup() {
        let outcome = DialResult {
            answered: false,
            code: 486,
            reason: "Busy Here".into(),
            duration_ms: 0,
        };
        assert_eq!(hangup_line("abc@h", &outcome), "hangup abc@h 486");
    }
}
