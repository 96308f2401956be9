//! Building the answer to a call: [`Route`] constructors and chainable
//! edits, dial options and conversions into [`DialTarget`] and [`Value`].

use crate::{
    CallVar, Decision, Dial, DialMode, DialTarget, Edit, FromChange, Header, MediaMode, Reject,
    Route, Value,
};

impl Route {
    /// Ring `targets` (sip: URIs with an IP address), one after the other
    /// (serial) with the host's ring time, until one answers.
    ///
    /// Targets are URIs (`&str`, `String`) or [`DialTarget`]s with headers
    /// of their own. An empty list rings the B leg's Request-URI (see
    /// [`Route::set_ruri`]). Chain [`parallel`](Route::parallel),
    /// [`timeout_ms`](Route::timeout_ms), [`with_header`](Route::with_header)
    /// or [`media`](Route::media) to change how.
    pub fn dial<I>(targets: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<DialTarget>,
    {
        Self::decide(Decision::Dial(Dial {
            targets: targets.into_iter().map(Into::into).collect(),
            mode: DialMode::Serial,
            timeout_ms: None,
            headers: Vec::new(),
            media: None,
        }))
    }

    /// Refuse the call with a final response (Tandem accepts 300–699).
    pub fn reject(code: u16, reason: impl Into<String>) -> Self {
        Self::decide(Decision::Reject(Reject {
            code,
            reason: reason.into(),
        }))
    }

    /// Decide nothing: the next handler (plugin, Lua dial plan or static
    /// route) routes the call, with this route's edits applied.
    pub fn pass() -> Self {
        Self::decide(Decision::Pass)
    }

    fn decide(decision: Decision) -> Self {
        Self {
            edits: Vec::new(),
            decision,
        }
    }

    /// Adds an edit of the B leg; edits apply in the order given.
    pub fn edit(mut self, edit: Edit) -> Self {
        self.edits.push(edit);
        self
    }

    /// Sets the header `name` to `value` on the B leg, replacing every
    /// value it had.
    pub fn set_header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.edit(Edit::SetHeader(Header::new(name, value)))
    }

    /// Adds one more value of the header `name` to the B leg.
    pub fn add_header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.edit(Edit::AddHeader(Header::new(name, value)))
    }

    /// Removes every value of the header `name` from the B leg.
    pub fn remove_header(self, name: impl Into<String>) -> Self {
        self.edit(Edit::RemoveHeader(name.into()))
    }

    /// Sets the B leg's Request-URI (and To): any sip:, sips: or tel: URI.
    /// Where the INVITE is sent is still decided by the dial targets.
    pub fn set_ruri(self, uri: impl Into<String>) -> Self {
        self.edit(Edit::SetRuri(uri.into()))
    }

    /// Changes the user and/or the display name of the B leg's From;
    /// `None` keeps that part, `Some("")` as the name removes it.
    pub fn set_from(self, user: Option<&str>, name: Option<&str>) -> Self {
        self.edit(Edit::SetFrom(FromChange {
            user: user.map(str::to_owned),
            name: name.map(str::to_owned),
        }))
    }

    /// Sets the per-call variable `name` (the Lua API's `call.vars`).
    pub fn set_var(self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.edit(Edit::SetVar(CallVar {
            name: name.into(),
            value: Some(value.into()),
        }))
    }

    /// Removes the per-call variable `name`.
    pub fn unset_var(self, name: impl Into<String>) -> Self {
        self.edit(Edit::SetVar(CallVar {
            name: name.into(),
            value: None,
        }))
    }

    /// The dial this route decides, if it is one.
    pub fn dial_mut(&mut self) -> Option<&mut Dial> {
        match &mut self.decision {
            Decision::Dial(dial) => Some(dial),
            _ => None,
        }
    }

    fn with_dial(mut self, change: impl FnOnce(&mut Dial)) -> Self {
        if let Some(dial) = self.dial_mut() {
            change(dial);
        }
        self
    }

    /// Tries the targets one after the other (failover): the default. Has
    /// no effect unless the route dials.
    pub fn serial(self) -> Self {
        self.with_dial(|d| d.mode = DialMode::Serial)
    }

    /// Rings every target at once; the first answer wins. Has no effect
    /// unless the route dials.
    pub fn parallel(self) -> Self {
        self.with_dial(|d| d.mode = DialMode::Parallel)
    }

    /// Ring time per attempt, in milliseconds. Has no effect unless the
    /// route dials.
    pub fn timeout_ms(self, ms: u32) -> Self {
        self.with_dial(|d| d.timeout_ms = Some(ms))
    }

    /// Adds a header to every attempt of the dial. Has no effect unless
    /// the route dials.
    pub fn with_header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let header = Header::new(name, value);
        self.with_dial(|d| d.headers.push(header))
    }

    /// Whether Tandem relays the media of the dial (default: the config's
    /// `[media] mode`). Has no effect unless the route dials.
    pub fn media(self, mode: MediaMode) -> Self {
        self.with_dial(|d| d.media = Some(mode))
    }
}

impl Default for Route {
    /// [`Route::pass`]: no edits, no decision.
    fn default() -> Self {
        Self::pass()
    }
}

impl DialTarget {
    /// A target URI with no headers of its own.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header sent to this target only.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }
}

impl From<&str> for DialTarget {
    fn from(uri: &str) -> Self {
        Self::new(uri)
    }
}

impl From<String> for DialTarget {
    fn from(uri: String) -> Self {
        Self::new(uri)
    }
}

impl From<&String> for DialTarget {
    fn from(uri: &String) -> Self {
        Self::new(uri.as_str())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(n.into())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(n.into())
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Num(x)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_defaults_to_serial_and_takes_options() {
        let route = Route::dial(["sip:1@127.0.0.1", "sip:2@127.0.0.2"])
            .parallel()
            .timeout_ms(5000)
            .with_header("X-A", "1")
            .media(MediaMode::Direct)
            .set_header("X-B", "2");
        let Decision::Dial(dial) = &route.decision else {
            panic!("not a dial: {route:?}");
        };
        assert_eq!(dial.mode, DialMode::Parallel);
        assert_eq!(dial.timeout_ms, Some(5000));
        assert_eq!(dial.headers, [Header::new("X-A", "1")]);
        assert_eq!(dial.media, Some(MediaMode::Direct));
        assert_eq!(
            dial.targets
                .iter()
                .map(|t| t.uri.as_str())
                .collect::<Vec<_>>(),
            ["sip:1@127.0.0.1", "sip:2@127.0.0.2"]
        );
        assert_eq!(route.edits, [Edit::SetHeader(Header::new("X-B", "2"))]);
        assert_eq!(
            Route::dial(vec![String::from("sip:1@127.0.0.1")])
                .parallel()
                .serial()
                .dial_mut()
                .map(|d| d.mode),
            Some(DialMode::Serial)
        );
    }

    #[test]
    fn targets_with_headers() {
        let route =
            Route::dial([DialTarget::new("sip:vm@127.0.0.1").with_header("X-Mailbox", "101")]);
        let Decision::Dial(dial) = route.decision else {
            panic!("not a dial");
        };
        assert_eq!(dial.targets[0].headers, [Header::new("X-Mailbox", "101")]);
    }

    #[test]
    fn dial_options_leave_other_decisions_alone() {
        let route = Route::reject(486, "Busy Here")
            .parallel()
            .timeout_ms(1)
            .with_header("X", "1");
        assert_eq!(
            route.decision,
            Decision::Reject(Reject {
                code: 486,
                reason: "Busy Here".into()
            })
        );
        assert_eq!(Route::pass().timeout_ms(1), Route::default());
    }

    #[test]
    fn edits_in_order() {
        let route = Route::pass()
            .add_header("X-Trace", "t")
            .remove_header("X-Account")
            .set_ruri("sip:+4930@carrier.example")
            .set_from(Some("+4930"), None)
            .set_var("n", 3)
            .set_var("s", "x")
            .unset_var("old");
        assert_eq!(
            route.edits,
            [
                Edit::AddHeader(Header::new("X-Trace", "t")),
                Edit::RemoveHeader("X-Account".into()),
                Edit::SetRuri("sip:+4930@carrier.example".into()),
                Edit::SetFrom(FromChange {
                    user: Some("+4930".into()),
                    name: None
                }),
                Edit::SetVar(CallVar {
                    name: "n".into(),
                    value: Some(Value::Int(3))
                }),
                Edit::SetVar(CallVar {
                    name: "s".into(),
                    value: Some(Value::Str("x".into()))
                }),
                Edit::SetVar(CallVar {
                    name: "old".into(),
                    value: None
                }),
            ]
        );
        assert_eq!(route.decision, Decision::Pass);
    }
}
