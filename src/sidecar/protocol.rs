//! The launch protocol's two lines: the bootstrap we write to the sidecar's stdin and the handshake
//! it answers with on stdout. Pure codecs, no I/O, so they can be tested and fuzzed in isolation.

use std::net::SocketAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The launch-protocol version this plugin speaks; the backend must announce the same.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest handshake line accepted; anything longer is not a handshake.
pub(crate) const MAX_HANDSHAKE_LINE: usize = 4096;

/// The secret that authenticates the plugin to one sidecar incarnation.
///
/// 32 bytes from the operating system's RNG, base64url without padding. It only ever travels over the
/// sidecar's stdin and in call metadata: never argv, environment or logs (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Draws a fresh token from the operating system's RNG.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::Io(std::io::Error::other(format!(
                "OS random source failed: {e}"
            )))
        })?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// The token's text. It is for the bootstrap line and the `authorization` header: never log it,
    /// never pass it through argv or the environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bootstrap<'a> {
    protocol_version: u32,
    token: &'a str,
}

/// The single line written to the sidecar's stdin, newline included.
pub(crate) fn bootstrap_line(token: &Token) -> String {
    let bootstrap = Bootstrap {
        protocol_version: PROTOCOL_VERSION,
        token: token.expose(),
    };
    // Serializing a struct of a number and a string cannot fail.
    let mut line = serde_json::to_string(&bootstrap).unwrap_or_default();
    line.push('\n');
    line
}

/// What the sidecar announced when it became ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The loopback address its gRPC server listens on.
    pub addr: SocketAddr,
    /// Its process id, as it sees it.
    pub pid: u32,
    /// Its semantic version.
    pub version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHandshake {
    anysync: String,
    protocol_version: u32,
    addr: String,
    pid: u32,
    version: String,
}

/// Parses the sidecar's first stdout line. Unknown fields are allowed, for forward compatibility;
/// a non-loopback address is refused because the plugin only ever talks to its own machine.
pub fn parse_handshake(line: &str) -> Result<Handshake> {
    let invalid = |reason: String| Error::HandshakeInvalid {
        reason,
        line: truncate(line, 200),
    };
    let wire: WireHandshake = serde_json::from_str(line.trim_end())
        .map_err(|e| invalid(format!("not a handshake object: {e}")))?;
    if wire.anysync != "ready" {
        return Err(invalid(format!(
            "expected \"anysync\":\"ready\", got {:?}",
            wire.anysync
        )));
    }
    if wire.protocol_version != PROTOCOL_VERSION {
        return Err(Error::IncompatibleBackend {
            expected: PROTOCOL_VERSION,
            found: wire.protocol_version,
        });
    }
    let addr: SocketAddr = wire
        .addr
        .parse()
        .map_err(|e| invalid(format!("addr {:?} is not IP:port: {e}", wire.addr)))?;
    if !addr.ip().is_loopback() || addr.port() == 0 {
        return Err(invalid(format!(
            "addr {addr} is not a loopback address with a port"
        )));
    }
    Ok(Handshake {
        addr,
        pid: wire.pid,
        version: wire.version,
    })
}

/// At most `max` characters of `text`, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_43_url_safe_chars_and_fresh_each_time() {
        let a = Token::generate().expect("rng");
        let b = Token::generate().expect("rng");
        assert_eq!(a.expose().len(), 43);
        assert!(a
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
    }

    #[test]
    fn bootstrap_line_is_one_json_line() {
        let token = Token::generate().expect("rng");
        let line = bootstrap_line(&token);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["protocolVersion"], 1);
        assert_eq!(value["token"], token.expose());
    }

    #[test]
    fn parses_a_ready_handshake() {
        let hs = parse_handshake(
            r#"{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:43567","pid":1234,"version":"0.1.0","extra":true}"#,
        )
        .expect("valid");
        assert_eq!(hs.addr, "127.0.0.1:43567".parse().expect("addr"));
        assert_eq!((hs.pid, hs.version.as_str()), (1234, "0.1.0"));
    }

    #[test]
    fn rejects_other_protocol_versions_by_name() {
        let err = parse_handshake(
            r#"{"anysync":"ready","protocolVersion":2,"addr":"127.0.0.1:1","pid":1,"version":"9"}"#,
        )
        .expect_err("must fail");
        assert_eq!(err.code(), "INCOMPATIBLE_BACKEND");
        assert!(err.to_string().contains("protocol 2") && err.to_string().contains("speaks 1"));
    }

    #[test]
    fn rejects_garbage_and_remote_addresses() {
        for line in [
            "hello world",
            "",
            r#"{"anysync":"ready"}"#,
            r#"{"anysync":"nope","protocolVersion":1,"addr":"127.0.0.1:1","pid":1,"version":"x"}"#,
            r#"{"anysync":"ready","protocolVersion":1,"addr":"10.0.0.1:80","pid":1,"version":"x"}"#,
            r#"{"anysync":"ready","protocolVersion":1,"addr":"localhost:80","pid":1,"version":"x"}"#,
            r#"{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:0","pid":1,"version":"x"}"#,
        ] {
            let err = parse_handshake(line).expect_err(line);
            assert_eq!(err.code(), "HANDSHAKE_INVALID", "{line}");
        }
    }

    #[test]
    fn truncate_cuts_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
