//! The gRPC client of one sidecar incarnation: a tonic channel to its loopback address, the bearer
//! token on every call, a deadline on every call, and `tonic::Status` mapped into [`Error`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};
use crate::models::{HealthCheckResponse, PingResponse};
use crate::proto::health_service_client::HealthServiceClient;
use crate::proto::{HealthCheckRequest, PingRequest};
use crate::sidecar::protocol::Token;

/// Largest response the client accepts; the backend's own limit (default 4 MiB) is the real bound.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerAuth {
    header: MetadataValue<Ascii>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
        Ok(request)
    }
}

/// A cheap-to-clone client of one backend incarnation; all clones share one HTTP/2 connection.
#[derive(Clone)]
pub struct Client {
    health: HealthServiceClient<InterceptedService<Channel, BearerAuth>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the backend at `addr` (eagerly, so a returned client has a live connection).
    pub(crate) async fn connect(
        addr: SocketAddr,
        token: &Token,
        timeout: Duration,
    ) -> Result<Self> {
        let header: MetadataValue<Ascii> = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| Error::Io(std::io::Error::other("token is not a valid header value")))?;
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Unavailable {
                reason: format!("bad backend address {addr}: {e}"),
            })?
            .tcp_nodelay(true)
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| Error::Unavailable {
                reason: format!("cannot connect to the backend at {addr}: {e}"),
            })?;
        let health = HealthServiceClient::with_interceptor(channel, BearerAuth { header })
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Self { health })
    }

    /// Echoes `message` through the backend.
    pub async fn ping(&self, message: String, timeout: Duration) -> Result<PingResponse> {
        let mut client = self.health.clone();
        let response = with_deadline(
            timeout,
            client.ping(request(PingRequest { message }, timeout)),
        )
        .await?;
        Ok(response.into())
    }

    /// Asks the backend for its health and identity.
    pub async fn check(&self, timeout: Duration) -> Result<HealthCheckResponse> {
        let mut client = self.health.clone();
        let response = with_deadline(
            timeout,
            client.check(request(HealthCheckRequest {}, timeout)),
        )
        .await?;
        Ok(response.into())
    }
}

/// A request whose `grpc-timeout` tells the server the same deadline the client enforces.
fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// `grpc-timeout` only bounds the server; a stopped or wedged server never answers at all, so the
/// client enforces the same deadline itself. Tonic's own enforcement of `grpc-timeout` reports
/// CANCELLED ("Timeout expired"); to the caller that is the deadline passing, so it says so.
async fn with_deadline<T>(
    timeout: Duration,
    call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(classify(status, timeout)),
        Err(_) => Err(Error::DeadlineExceeded { timeout }),
    }
}

/// Maps a failed call's status into our error.
///
/// A status the backend sent (in `grpc-status`) keeps its code. A status tonic made up from a
/// transport failure carries that failure as its `source`: a backend that dies under a call surfaces
/// as UNKNOWN "transport error" or CANCELLED "operation was canceled", which tells the caller
/// nothing it can act on. To the caller that is the backend being unavailable, so it says so.
fn classify(status: tonic::Status, timeout: Duration) -> Error {
    if is_deadline(&status) {
        return Error::DeadlineExceeded { timeout };
    }
    if std::error::Error::source(&status).is_some() {
        return Error::Unavailable {
            reason: format!(
                "the connection to the backend broke during the call ({}); the backend may have exited and may or may not have handled the call",
                status.message()
            ),
        };
    }
    status.into()
}

fn is_deadline(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::DeadlineExceeded
        || (status.code() == tonic::Code::Cancelled
            && status.message() == tonic::TimeoutExpired(()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[test]
    fn statuses_the_backend_sent_keep_their_code() {
        for status in [
            tonic::Status::internal("boom"),
            tonic::Status::unknown("odd"),
            tonic::Status::cancelled("the server cancelled"),
            tonic::Status::unauthenticated("missing bearer token"),
        ] {
            let code = status.code();
            let error = classify(status, TIMEOUT);
            assert_eq!(error.code(), crate::error::GrpcCode::from(code).as_str());
        }
    }

    #[test]
    fn transport_failures_are_unavailable() {
        // What tonic makes of a connection that breaks under a call: the failure is the source.
        let broken = tonic::Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(broken.code(), tonic::Code::Unknown);
        let error = classify(broken, TIMEOUT);
        assert_eq!(error.code(), "UNAVAILABLE", "{error}");
        assert!(
            error.to_string().contains("broke during the call"),
            "{error}"
        );
    }

    #[test]
    fn tonics_own_deadline_is_deadline_exceeded() {
        let expired = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(classify(expired, TIMEOUT).code(), "DEADLINE_EXCEEDED");
        let server = tonic::Status::deadline_exceeded("context deadline exceeded");
        assert_eq!(classify(server, TIMEOUT).code(), "DEADLINE_EXCEEDED");
    }
}
