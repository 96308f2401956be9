//! Script errors with the file and line they happened at.

use api::ScriptError;

/// Why a script version could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Syntax error, error in the top level, or no `on_invite`.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Script {
        /// The file (the script or one of its modules).
        file: String,
        /// The line, when known.
        line: Option<u32>,
        /// What is wrong.
        message: String,
    },
}

impl LoadError {
    pub(crate) fn from_lua(e: &mlua::Error, main: &str) -> LoadError {
        let (file, line, message) = locate(e);
        LoadError::Script {
            file: file.unwrap_or_else(|| main.to_string()),
            line,
            message,
        }
    }
}

/// A failed run as the core sees it: `script` is `file@vN`.
pub(crate) fn script_error(e: &mlua::Error, label: &str) -> ScriptError {
    let (file, line, message) = locate(e);
    let version = label.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
    let script = match file {
        Some(f) if !version.is_empty() => format!("{f}@{version}"),
        _ => label.to_string(),
    };
    ScriptError {
        script,
        line,
        message,
    }
}

/// The innermost message of an error, and the first `file.lua:LINE:` in
/// it or in its traceback.
fn locate(e: &mlua::Error) -> (Option<String>, Option<u32>, String) {
    let mut traceback = None;
    let mut cur = e;
    loop {
        match cur {
            mlua::Error::CallbackError {
                traceback: t,
                cause,
            } => {
                traceback.get_or_insert(t.clone());
                cur = cause;
            }
            mlua::Error::WithContext { cause, .. } => cur = cause,
            _ => break,
        }
    }
    let raw = match cur {
        mlua::Error::RuntimeError(m) => trim_traceback(m),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(m) => format!("memory limit exceeded ({m})"),
        other => other.to_string(),
    };
    if let Some((file, line, rest)) = split_location(&raw) {
        return (Some(file), Some(line), rest);
    }
    if let Some((file, line, _)) = traceback.as_deref().and_then(find_location) {
        return (Some(file), Some(line), raw);
    }
    (None, None, raw)
}

/// A message without the traceback mlua appends to errors that passed
/// through Lua (`pcall` of a host function, nested coroutines).
fn trim_traceback(m: &str) -> String {
    let m = m.split("\nstack traceback:").next().unwrap_or(m);
    m.strip_prefix("runtime error: ")
        .unwrap_or(m)
        .trim_end()
        .to_string()
}

/// `file.lua:12: message` → (file, 12, message). An error that crossed a
/// `coroutine.wrap` carries the outer line first (`a.lua:9: a.lua:3: m`):
/// the innermost one is where it was raised.
fn split_location(s: &str) -> Option<(String, u32, String)> {
    let (file, line, end) = find_location(s)?;
    let start = s.find(&format!("{file}:{line}:"))?;
    if start != 0 {
        return None;
    }
    let rest = s[end..].trim_start();
    Some(split_location(rest).unwrap_or((file, line, rest.to_string())))
}

/// The first `NAME.lua:LINE:` in `s`: (name, line, index after it).
fn find_location(s: &str) -> Option<(String, u32, usize)> {
    let mut from = 0;
    while let Some(i) = s[from..].find(".lua:") {
        let at = from + i;
        let start = s[..at]
            .rfind(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '[')
            .map(|p| p + 1)
            .unwrap_or(0);
        let digits_start = at + 5;
        let digits: String = s[digits_start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let after = digits_start + digits.len();
        if !digits.is_empty() && s[after..].starts_with(':') {
            let line = digits.parse().ok()?;
            return Some((s[start..at + 4].to_string(), line, after + 1));
        }
        from = digits_start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            split_location("pbx.lua:12: attempt to call a nil value"),
            Some(("pbx.lua".into(), 12, "attempt to call a nil value".into()))
        );
        let (file, line, _) =
            find_location("stack traceback:\n\t[C]: in ?\n\tlib/x.lua:3: in function 'f'").unwrap();
        assert_eq!((file.as_str(), line), ("lib/x.lua", 3));
        assert_eq!(split_location("no location"), None);
        assert_eq!(
            split_location("pbx.lua:9: lib/x.lua:3: boom"),
            Some(("lib/x.lua".into(), 3, "boom".into()))
        );
    }
}
