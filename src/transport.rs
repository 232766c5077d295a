//! The channel Rust code hands to its own tonic-generated clients
//! (`FooClient::new(app.anysync().channel())`): authenticated, and always routed to the backend
//! incarnation that runs now, so a client made once keeps working across restarts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::Service;

use crate::supervisor::{running_client, Snapshots};

/// The error type of [`BackendChannel`]: tonic clients turn it back into the `tonic::Status` it
/// carries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `tower::Service` carrying gRPC to the supervised backend; see
/// [`Supervisor::channel`](crate::Supervisor::channel). Cheap to clone; all clones share the
/// incarnation's unary connection.
///
/// Each call waits for a (re)starting backend up to `callTimeoutMs`, then fails UNAVAILABLE
/// (FAILED_PRECONDITION when the supervisor gave up: call `restart()`). Deadlines are the caller's:
/// set them per request (`Request::set_timeout`), as with any tonic channel. A call in flight when
/// the backend dies fails (UNAVAILABLE or UNKNOWN from the transport); the next one goes to the
/// new incarnation.
#[derive(Clone)]
pub struct BackendChannel {
    snapshots: Snapshots,
    wait: Duration,
}

impl std::fmt::Debug for BackendChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendChannel")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl BackendChannel {
    pub(crate) fn new(snapshots: Snapshots, wait: Duration) -> Self {
        Self { snapshots, wait }
    }
}

impl Service<http::Request<Body>> for BackendChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the current incarnation's, known only inside `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let snapshots = self.snapshots.clone();
        let wait = self.wait;
        Box::pin(async move {
            let client = running_client(snapshots, Instant::now() + wait, wait)
                .await
                .map_err(|error| Box::new(error.to_status()) as BoxError)?;
            let mut header = http::HeaderValue::from_bytes(client.authorization().as_bytes())
                .map_err(|e| Box::new(e) as BoxError)?;
            header.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, header);
            let mut channel = client.unary_channel();
            std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
            channel.call(request).await
        })
    }
}
