//! Which methods a front end may call: the scope of `anysync:allow-call` (docs/call-path.md,
//! "Permission scope"). Checked in Rust before anything is sent, so the backend never sees a call
//! the capabilities do not grant.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One entry of the `anysync:allow-call` scope: a method name or a glob of them.
///
/// ```json
/// { "identifier": "anysync:allow-call", "allow": [{ "method": "example.v1.CounterService/*" }] }
/// ```
///
/// `*` matches any run of characters (including none, and including `/` and `.`), so
/// `example.v1.CounterService/*` grants one service and `example.v1.*` a whole package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodScope {
    /// The method (`package.Service/Method`) or a glob of methods.
    pub method: String,
}

impl MethodScope {
    /// Whether `method` matches this entry.
    pub fn matches(&self, method: &str) -> bool {
        glob_matches(&self.method, method)
    }
}

/// Decides whether `method` may be called given every allow and deny entry that applies to the
/// command (its own scope and the plugin's global scope together).
///
/// Deny wins: a method matching any deny entry is refused even when an allow entry matches too.
/// Unlike `tauri::ipc::CommandScope::matches`, an empty allow list grants nothing: a front end may
/// call only what some capability names.
pub(crate) fn authorize<'a>(
    method: &str,
    allows: impl IntoIterator<Item = &'a MethodScope>,
    denies: impl IntoIterator<Item = &'a MethodScope>,
) -> Result<()> {
    if let Some(deny) = denies.into_iter().find(|d| d.matches(method)) {
        return Err(Error::PermissionDenied {
            method: method.to_owned(),
            denied_by: Some(deny.method.clone()),
        });
    }
    if allows.into_iter().any(|a| a.matches(method)) {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            method: method.to_owned(),
            denied_by: None,
        })
    }
}

/// `*` matches any run of characters; everything else matches itself. Iterative with one
/// backtrack point, so a hostile pattern cannot make it exponential.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(method: &str) -> MethodScope {
        MethodScope {
            method: method.into(),
        }
    }

    #[test]
    fn globs() {
        let cases = [
            (
                "anysync.v1.HealthService/*",
                "anysync.v1.HealthService/Ping",
                true,
            ),
            (
                "anysync.v1.HealthService/*",
                "anysync.v1.HealthService/",
                true,
            ),
            (
                "anysync.v1.HealthService/*",
                "anysync.v1.HealthServiceX/Ping",
                false,
            ),
            (
                "anysync.v1.HealthService/Ping",
                "anysync.v1.HealthService/Ping",
                true,
            ),
            (
                "anysync.v1.HealthService/Ping",
                "anysync.v1.HealthService/Pin",
                false,
            ),
            (
                "anysync.v1.HealthService/Ping",
                "anysync.v1.HealthService/PingX",
                false,
            ),
            ("*", "anything.v1.At/All", true),
            ("example.*", "example.v1.CounterService/Tick", true),
            ("*/Tick", "example.v1.CounterService/Tick", true),
            ("*/Tick", "example.v1.CounterService/Ticks", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("**", "", true),
            ("", "", true),
            ("", "a", false),
        ];
        for (pattern, method, expected) in cases {
            assert_eq!(
                scope(pattern).matches(method),
                expected,
                "{pattern} ~ {method}"
            );
        }
        // Linear, not exponential, on a pathological pattern.
        let pattern = "*a".repeat(50);
        let text = "a".repeat(10_000) + "b";
        assert!(!scope(&pattern).matches(&text));
    }

    #[test]
    fn deny_wins_and_empty_allows_nothing() {
        let allow = [scope("example.v1.CounterService/*")];
        let deny = [scope("example.v1.CounterService/Sleep")];
        assert!(authorize("example.v1.CounterService/Tick", &allow, &deny).is_ok());
        let err = authorize("example.v1.CounterService/Sleep", &allow, &deny).expect_err("denied");
        assert_eq!(err.code(), "PERMISSION_DENIED");
        assert!(err.to_string().contains("deny entry"), "{err}");
        assert!(
            err.to_string().contains("example.v1.CounterService/Sleep"),
            "{err}"
        );

        let err = authorize("example.v1.Other/Get", &allow, &deny).expect_err("not allowed");
        let info = err.info();
        assert_eq!(info.code, "PERMISSION_DENIED");
        assert!(
            info.message.contains(
                r#"{ "identifier": "anysync:allow-call", "allow": [{ "method": "example.v1.Other/Get" }] }"#
            ),
            "{}",
            info.message
        );
        assert_eq!(
            info.details.expect("details")["method"],
            "example.v1.Other/Get"
        );

        let none: [MethodScope; 0] = [];
        assert!(authorize("anysync.v1.HealthService/Ping", &none, &none).is_err());
    }

    #[test]
    fn scope_entries_are_strict_json() {
        let entry: MethodScope =
            serde_json::from_value(serde_json::json!({ "method": "a.B/*" })).expect("valid");
        assert_eq!(entry, scope("a.B/*"));
        assert!(
            serde_json::from_value::<MethodScope>(serde_json::json!({ "methods": "a" })).is_err()
        );
    }
}
