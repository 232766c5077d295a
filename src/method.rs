//! Method names of the generic call path (docs/call-path.md, "Method names"): `package.Service/Method`,
//! the gRPC path without its leading slash.

use tonic::codegen::http::uri::PathAndQuery;

use crate::error::{Error, Result};

/// Longest method name accepted; far beyond any real one, it only bounds what an error quotes.
const MAX_METHOD_LEN: usize = 256;

/// A validated method name and its gRPC path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method {
    name: String,
    path: PathAndQuery,
}

impl Method {
    /// Checks `name` against `^[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*$`.
    pub(crate) fn parse(name: &str) -> Result<Self> {
        let invalid = || {
            Error::InvalidArgument {
            message: format!(
                "method {:?} is not a gRPC method name: expected package.Service/Method, e.g. anysync.v1.HealthService/Ping",
                truncate(name)
            ),
        }
        };
        if name.len() > MAX_METHOD_LEN {
            return Err(invalid());
        }
        let (service, method) = name.split_once('/').ok_or_else(invalid)?;
        let starts_well = |s: &str| s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        let service_ok = starts_well(service)
            && service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let method_ok = starts_well(method)
            && method
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !service_ok || !method_ok {
            return Err(invalid());
        }
        let path = PathAndQuery::try_from(format!("/{name}")).map_err(|_| invalid())?;
        Ok(Self {
            name: name.to_owned(),
            path,
        })
    }

    /// `package.Service/Method`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `/package.Service/Method`.
    pub(crate) fn path(&self) -> PathAndQuery {
        self.path.clone()
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_grpc_names() {
        for name in [
            "anysync.v1.HealthService/Ping",
            "grpc.health.v1.Health/Watch",
            "_x/_y",
            "Svc/M2",
        ] {
            let method = Method::parse(name).expect(name);
            assert_eq!(method.path().as_str(), format!("/{name}"));
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "",
            "/anysync.v1.HealthService/Ping",
            "anysync.v1.HealthService",
            "anysync.v1.HealthService/",
            "a/b/c",
            "1a/b",
            "a/b.c",
            "a b/c",
            "a/c?x=1",
            "ä/b",
            &"a".repeat(300),
        ] {
            let err = Method::parse(name).expect_err(name);
            assert_eq!(err.code(), "INVALID_ARGUMENT", "{name}");
        }
    }
}
