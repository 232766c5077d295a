//! The gRPC client of one sidecar incarnation: tonic channels to its loopback address, the bearer
//! token on every call, a deadline on every call, and `tonic::Status` mapped into [`Error`].
//!
//! Two kinds of HTTP/2 connection per incarnation: one for unary calls (and the typed health
//! client), and a small pool for server streams, so that long-lived streams never take the slots
//! of unary calls (the backend allows a bounded number of concurrent streams per connection).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tonic::codec::Streaming;
use tonic::codegen::http::Uri;
use tonic::codegen::Service as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::codec::RawCodec;
use crate::connection::{Dial, UnaryConnection};
use crate::error::{Error, Result};
use crate::method::Method;
use crate::proto::health_service_client::HealthServiceClient;
use crate::proto::{HealthCheckRequest, HealthCheckResponse, PingRequest, PingResponse};
use crate::sidecar::protocol::Token;

/// Largest response the client accepts; the backend's own limit (default 4 MiB) is the real bound.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Streams carried by one stream connection. Below the backend's `MaxConcurrentStreams` (128 by
/// default in grpc-go and in go-backend), so a stream never waits for a slot the server withholds.
const STREAMS_PER_CONNECTION: usize = 100;
/// Stream connections per incarnation; with [`STREAMS_PER_CONNECTION`] the bound on open streams,
/// past which opening one fails RESOURCE_EXHAUSTED instead of queueing without end.
const MAX_STREAM_CONNECTIONS: usize = 16;
/// HTTP/2 receive window of each stream: the most the backend can send on a stream that Rust has
/// not taken yet. It is the bound on what Rust buffers for a stalled consumer (the credit path never
/// reads beyond the front end's credit), after which HTTP/2 flow control blocks the Go handler's
/// `Send`. 256 KiB keeps a 64 KiB-message stream flowing without a window update per message.
pub(crate) const STREAM_WINDOW_BYTES: u32 = 256 * 1024;

/// Tells incarnations apart, so a stream knows when the backend it was opened on is gone.
static INCARNATIONS: AtomicU64 = AtomicU64::new(1);

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

/// A cheap-to-clone client of one backend incarnation; all clones share its connections.
#[derive(Clone)]
pub struct Client {
    id: u64,
    health: HealthServiceClient<InterceptedService<UnaryConnection, BearerAuth>>,
    unary: UnaryConnection,
    auth: MetadataValue<Ascii>,
    token: Token,
    liveness: Liveness,
    streams: Arc<StreamConnections>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("incarnation", &self.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the backend at `addr` (eagerly, so a returned client has a live connection).
    ///
    /// Every connection, the first and any redial (tonic's channel redials a broken connection on
    /// its own), goes through `liveness`: once the incarnation's process has exited, nothing is
    /// dialled any more, so a call can never reach whatever binds the freed port next.
    pub(crate) async fn connect(
        addr: SocketAddr,
        token: &Token,
        timeout: Duration,
        liveness: Liveness,
    ) -> Result<Self> {
        let header: MetadataValue<Ascii> = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| Error::Io(std::io::Error::other("token is not a valid header value")))?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Unavailable {
                reason: format!("bad backend address {addr}: {e}"),
            })?
            .tcp_nodelay(true)
            .connect_timeout(timeout);
        let connector = IncarnationConnector {
            addr,
            liveness: liveness.clone(),
        };
        let dial: Dial = {
            let connector = connector.clone();
            Arc::new(move || {
                let mut connector = connector.clone();
                Box::pin(async move {
                    connector
                        .call(Uri::from_static("http://backend"))
                        .await
                        .map(TokioIo::into_inner)
                })
            })
        };
        let authority = addr.to_string().parse().map_err(|e| Error::Unavailable {
            reason: format!("bad backend address {addr}: {e}"),
        })?;
        let channel = UnaryConnection::connect(authority, dial, timeout)
            .await
            .map_err(|e| Error::Unavailable {
                reason: format!("cannot connect to the backend at {addr}: {e}"),
            })?;
        let health = HealthServiceClient::with_interceptor(
            channel.clone(),
            BearerAuth {
                header: header.clone(),
            },
        )
        .max_decoding_message_size(MAX_RESPONSE_BYTES);
        // Every stream connection can hold a full window on every stream at once, so stalled
        // streams never use up the connection's window and block their neighbours.
        let stream_endpoint = endpoint
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(STREAM_WINDOW_BYTES * STREAMS_PER_CONNECTION as u32);
        Ok(Self {
            id: INCARNATIONS.fetch_add(1, Ordering::Relaxed),
            health,
            unary: channel,
            auth: header,
            token: token.clone(),
            liveness: liveness.clone(),
            streams: Arc::new(StreamConnections {
                endpoint: stream_endpoint,
                connector,
                connections: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Which incarnation this client talks to.
    pub(crate) fn incarnation(&self) -> u64 {
        self.id
    }

    /// Whether this incarnation may still be dialled (see [`Liveness`]): a client whose backend is
    /// known to be gone is not handed to new calls even before the supervisor heard of it.
    pub(crate) fn alive(&self) -> bool {
        self.liveness.alive()
    }

    /// This incarnation's secret.
    pub(crate) fn token(&self) -> &Token {
        &self.token
    }

    /// The unary connection, without the token (see [`Self::authorization`]).
    pub(crate) fn unary_channel(&self) -> UnaryConnection {
        self.unary.clone()
    }

    /// The `authorization` header value every call carries.
    pub(crate) fn authorization(&self) -> &MetadataValue<Ascii> {
        &self.auth
    }

    /// Echoes `message` through the backend.
    pub(crate) async fn ping(
        &self,
        message: String,
        timeout: Duration,
    ) -> std::result::Result<PingResponse, Failure> {
        let mut client = self.health.clone();
        with_deadline(
            timeout,
            client.ping(request(PingRequest { message }, timeout)),
        )
        .await
    }

    /// Asks the backend for its health and identity.
    pub(crate) async fn check(
        &self,
        timeout: Duration,
    ) -> std::result::Result<HealthCheckResponse, Failure> {
        let mut client = self.health.clone();
        with_deadline(
            timeout,
            client.check(request(HealthCheckRequest {}, timeout)),
        )
        .await
    }

    /// One unary call of any method with the request's protobuf bytes, answering the response's.
    pub(crate) async fn unary(
        &self,
        method: &Method,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<Bytes, Failure> {
        let mut grpc = tonic::client::Grpc::new(self.unary.clone())
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let mut request = request(body, timeout);
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        let path = method.path();
        with_deadline(timeout, async move {
            grpc.ready().await.map_err(tonic::Status::from_error)?;
            grpc.unary(request, path, RawCodec).await
        })
        .await
    }

    /// A slot on a stream connection, held for the life of one stream.
    pub(crate) fn stream_slot(&self) -> Result<StreamSlot> {
        self.streams.acquire()
    }

    /// Opens a server stream of any method on `slot`'s connection; resolves once the backend sent
    /// its response headers. The status is left raw: the stream path classifies it.
    pub(crate) async fn server_streaming(
        &self,
        slot: &StreamSlot,
        method: &Method,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> std::result::Result<Streaming<Bytes>, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(slot.connection.channel.clone())
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let mut request = tonic::Request::new(body);
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::from_error(e.into()))?;
        grpc.server_streaming(request, method.path(), RawCodec)
            .await
            .map(tonic::Response::into_inner)
    }
}

/// The stream connections of one incarnation, dialled as streams need them.
struct StreamConnections {
    endpoint: Endpoint,
    connector: IncarnationConnector,
    connections: Mutex<Vec<Arc<StreamConnection>>>,
}

struct StreamConnection {
    channel: Channel,
    open: AtomicUsize,
}

/// One stream's claim on a stream connection; released when dropped.
pub(crate) struct StreamSlot {
    connection: Arc<StreamConnection>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.connection.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl StreamConnections {
    fn acquire(&self) -> Result<StreamSlot> {
        let mut connections = self
            .connections
            .lock()
            .map_err(|_| Error::Io(std::io::Error::other("stream connection pool poisoned")))?;
        // Counts only change under this lock (increments) or drop (decrements), so a connection
        // seen below the limit stays below it until the increment.
        if let Some(connection) = connections
            .iter()
            .find(|c| c.open.load(Ordering::Acquire) < STREAMS_PER_CONNECTION)
        {
            connection.open.fetch_add(1, Ordering::AcqRel);
            return Ok(StreamSlot {
                connection: Arc::clone(connection),
            });
        }
        if connections.len() >= MAX_STREAM_CONNECTIONS {
            return Err(Error::ResourceExhausted {
                message: format!(
                    "too many open streams: {} are open on this backend, the limit; end some before opening more",
                    STREAMS_PER_CONNECTION * MAX_STREAM_CONNECTIONS
                ),
            });
        }
        // Lazy: the connection is dialled by the first stream on it, within that stream's call.
        let connection = Arc::new(StreamConnection {
            channel: self
                .endpoint
                .connect_with_connector_lazy(self.connector.clone()),
            open: AtomicUsize::new(1),
        });
        log::debug!(
            "anysync: stream connection {} opened",
            connections.len() + 1
        );
        connections.push(Arc::clone(&connection));
        Ok(StreamSlot { connection })
    }
}

/// Whether one incarnation's process may still be dialled: it has not exited, as far as the
/// supervisor knows ([`Liveness::end`]), no connection to it broke without a GOAWAY (see
/// [`Watched`]) and, on Linux, macOS and Windows, as far as the OS knows
/// ([`child_running`](crate::sidecar::child_running)).
#[derive(Clone, Debug)]
pub(crate) struct Liveness {
    pid: u32,
    ended: Arc<AtomicBool>,
}

impl Liveness {
    pub(crate) fn new(pid: u32) -> Self {
        Self {
            pid,
            ended: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The incarnation is over: nothing dials its address again.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    pub(crate) fn alive(&self) -> bool {
        !self.ended.load(Ordering::Acquire) && crate::sidecar::child_running(self.pid)
    }
}

/// Dials the one address of one incarnation, and only while it is alive; see [`Liveness`].
#[derive(Clone)]
struct IncarnationConnector {
    addr: SocketAddr,
    liveness: Liveness,
}

impl tonic::codegen::Service<Uri> for IncarnationConnector {
    type Response = TokioIo<Watched>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let (addr, liveness) = (self.addr, self.liveness.clone());
        Box::pin(async move {
            // Refused, so the call counts as never sent and waits for the next incarnation.
            let gone = || {
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!(
                        "the backend incarnation at {addr} is gone; its port is not dialled again"
                    ),
                )
            };
            if !liveness.alive() {
                return Err(gone());
            }
            let stream = tokio::net::TcpStream::connect(addr).await?;
            // The port was free for someone else only once the process had died: checked again
            // after the connect, before a single byte (the token) is written.
            if !liveness.alive() {
                return Err(gone());
            }
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(Watched {
                stream,
                frames: FrameScanner::default(),
                liveness,
            }))
        })
    }
}

/// A connection to the backend that ends its incarnation's dialling when it breaks: a backend
/// closes a connection it means to close with an HTTP/2 GOAWAY first (idle timeout, graceful
/// stop), after which a redial is fine; a connection that ends without one means the process
/// died (or the connection was cut), and its port may be someone else's by the time a redial
/// would happen: long before the process is reaped and the supervisor hears of it.
pub(crate) struct Watched {
    stream: tokio::net::TcpStream,
    frames: FrameScanner,
    liveness: Liveness,
}

impl Watched {
    /// A watched connection outside any incarnation, for the connection's own tests.
    #[cfg(test)]
    pub(crate) fn for_tests(stream: tokio::net::TcpStream) -> Self {
        Self {
            stream,
            frames: FrameScanner::default(),
            liveness: Liveness::new(std::process::id()),
        }
    }

    fn ended(&self) {
        if !self.frames.saw_goaway {
            self.liveness.end();
        }
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() == before && room {
                    self.ended();
                } else {
                    self.frames.feed(&buf.filled()[before..]);
                }
            }
            Poll::Ready(Err(_)) => self.ended(),
            Poll::Pending => {}
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Err(_))) {
            self.ended();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Err(_))) {
            self.ended();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Follows the HTTP/2 frames a server sends (9-byte headers, payloads skipped) to notice GOAWAY.
#[derive(Default)]
struct FrameScanner {
    header: [u8; 9],
    have: usize,
    skip: usize,
    saw_goaway: bool,
}

impl FrameScanner {
    const GOAWAY: u8 = 0x7;

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (9 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 9 {
                let [a, b, c, kind, ..] = self.header;
                self.skip = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                self.saw_goaway |= kind == Self::GOAWAY;
                self.have = 0;
            }
        }
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
) -> std::result::Result<T, Failure> {
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        // grpc-go resets a stream whose `grpc-timeout` ran out (RST_STREAM CANCEL), which can beat
        // our own timer by a hair: that is the deadline passing, not a broken connection.
        Ok(Err(status)) if deadline_reset(&status, started.elapsed(), timeout) => Err(Failure {
            error: Error::DeadlineExceeded { timeout },
            sent: true,
        }),
        Ok(Err(status)) => Err(Failure {
            sent: !never_sent(&status),
            error: classify(status, timeout),
        }),
        Err(_) => Err(Failure {
            error: Error::DeadlineExceeded { timeout },
            sent: true,
        }),
    }
}

/// A failed call, and whether the request may have reached the backend.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    /// `false` only when the connection could not even be made (the backend's port was closed:
    /// it exited): then nothing was sent, and trying the next incarnation is safe.
    pub(crate) sent: bool,
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

/// Whether a status is tonic's report of a refused connection (the call was never written).
/// How early a server-side deadline may fire before ours: `grpc-timeout` is sent in whole units
/// and the server starts its timer when the headers arrive.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// Whether `status` is the server cancelling the stream (RST_STREAM CANCEL) once the call's
/// deadline had (all but) passed.
fn deadline_reset(status: &tonic::Status, elapsed: Duration, timeout: Duration) -> bool {
    if elapsed + DEADLINE_SLACK < timeout {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error
            .downcast_ref::<h2::Error>()
            .is_some_and(|e| e.is_remote() && e.reason() == Some(h2::Reason::CANCEL))
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// The message of the UNAVAILABLE status a stopping backend refuses a call with before any handler
/// ran (go-backend/README.md, the stop): nothing of the call was done, so it may go to the next
/// incarnation.
const REFUSED_WHEN_STOPPING: &str =
    "the backend is shutting down: the call was not started; call again once the backend has restarted";

fn never_sent(status: &tonic::Status) -> bool {
    if status.code() == tonic::Code::Unavailable && status.message() == REFUSED_WHEN_STOPPING {
        return true;
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        // hyper cancels a request it never handed to the connection ("connection closed", "not
        // ready"): during a restart the old incarnation's connection closes under queued calls.
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        // A stream the server refused was not processed (RFC 9113 §8.7): safe to send again.
        if error
            .downcast_ref::<h2::Error>()
            .is_some_and(|e| e.is_remote() && e.reason() == Some(h2::Reason::REFUSED_STREAM))
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// Maps a failed call's status into our error.
///
/// A status the backend sent (in `grpc-status`) keeps its code. A status tonic made up from a
/// transport failure carries that failure as its `source`: a backend that dies under a call surfaces
/// as UNKNOWN "transport error" or CANCELLED "operation was canceled", which tells the caller
/// nothing it can act on. To the caller that is the backend being unavailable, so it says so.
pub(crate) fn classify(status: tonic::Status, timeout: Duration) -> Error {
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

#[cfg(all(test, target_os = "linux"))]
mod liveness_tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A connection through the connector to a server that writes `wire` and closes; read to its
    /// end. Returns whether the incarnation may still be dialled afterwards.
    async fn after_server_closes(wire: Vec<u8>) -> bool {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            socket.write_all(&wire).await.expect("write");
        });
        // Our own child stands in for the backend process, alive throughout.
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .expect("sleep");
        let liveness = Liveness::new(child.id().expect("pid"));
        let mut connector = IncarnationConnector {
            addr,
            liveness: liveness.clone(),
        };
        assert!(liveness.alive());
        let io = tonic::codegen::Service::call(&mut connector, Uri::from_static("http://x"))
            .await
            .expect("connects while alive");
        let mut watched = io.into_inner();
        server.await.expect("server");
        let mut sink = Vec::new();
        let _ = watched.read_to_end(&mut sink).await;
        let alive = liveness.alive();
        let _ = child.kill().await;
        alive
    }

    /// One HTTP/2 frame: 24-bit length, type, no flags, stream 0.
    pub(super) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            0,
            0,
            0,
            0,
            0,
        ];
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test]
    async fn a_connection_that_breaks_without_goaway_ends_the_dialling() {
        assert!(!after_server_closes(frame(0x4, &[])).await);
    }

    #[tokio::test]
    async fn a_connection_closed_after_goaway_may_be_redialled() {
        let mut wire = frame(0x4, &[]);
        wire.extend(frame(0x7, &[0; 8]));
        assert!(after_server_closes(wire).await);
    }

    #[tokio::test]
    async fn an_exited_process_is_not_dialled_even_before_it_is_reaped() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let liveness = Liveness::new(child.id());
        // Exited, not reaped (no wait yet): a zombie, whose port would already be free.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while liveness.alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "an exited, unreaped child still counts as alive"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut connector = IncarnationConnector { addr, liveness };
        let refused = tonic::codegen::Service::call(&mut connector, Uri::from_static("http://x"))
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        listener.set_nonblocking(true).expect("nonblocking");
        assert!(listener.accept().is_err(), "nothing was dialled");
        child.wait().expect("reap");
    }
}

#[cfg(test)]
mod frame_tests {
    use super::liveness_tests::frame;
    use super::FrameScanner;

    #[test]
    fn goaway_is_found_across_frames_and_reads() {
        // SETTINGS, a DATA frame whose payload looks like a GOAWAY header, then the real GOAWAY.
        let mut wire = frame(0x4, &[0; 12]);
        wire.extend(frame(0x0, &frame(0x7, &[0; 8])));
        let mut scanner = FrameScanner::default();
        for byte in &wire {
            scanner.feed(std::slice::from_ref(byte));
        }
        assert!(!scanner.saw_goaway, "payloads are skipped, not parsed");
        let goaway = frame(0x7, &[0; 8]);
        scanner.feed(&goaway[..4]);
        scanner.feed(&goaway[4..]);
        assert!(scanner.saw_goaway);
    }
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
    fn only_a_call_the_stop_refused_before_its_handler_counts_as_never_sent() {
        assert!(never_sent(&tonic::Status::unavailable(
            REFUSED_WHEN_STOPPING
        )));
        // Cut while its handler ran: it may have done something, so it is not sent again.
        let ended = "the backend is shutting down: the call was ended; call again once the backend has restarted";
        assert!(!never_sent(&tonic::Status::unavailable(ended)));
        assert!(!never_sent(&tonic::Status::internal(REFUSED_WHEN_STOPPING)));
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
