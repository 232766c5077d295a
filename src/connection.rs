//! The unary HTTP/2 connection of one backend incarnation, on the `h2` crate directly.
//!
//! tonic's `Channel` puts a `tower::Buffer` task in front of hyper, and hyper's HTTP/2 client adds
//! its own dispatch task and a task per response: five task wake-ups per call between the caller and
//! the connection, each a cross-thread wake on a multi-threaded runtime, which cost more CPU than the
//! call's own work (bench/profiles). Here the caller's task queues the request on the shared
//! connection itself and awaits the response itself; the connection's one task does the I/O. Two
//! wake-ups per call. A broken or closed connection is dialled again on the next call, through the
//! incarnation's connector (which refuses once the incarnation is gone).
//!
//! Only unary calls (and the Rust-side [`BackendChannel`](crate::BackendChannel)) use it; server
//! streams keep tonic's channels (src/client.rs), whose per-stream windows and pool they need.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame};
use tonic::body::Body;
use tonic::codegen::http::{self, uri, Uri};
use tonic::codegen::Service;

/// The error of a call on the connection: tonic turns it into the call's `Status`, keeping it as the
/// status' source (src/client.rs classifies calls by it).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the connection advertises: the receive windows and header bound hyper's client used when
/// this connection went through tonic (2 MiB per stream, 5 MiB per connection), so large responses
/// flow as before.
const STREAM_WINDOW_BYTES: u32 = 2 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 5 << 20;
const MAX_HEADER_LIST_BYTES: u32 = 64 << 10;

/// Dials one incarnation's address (see `IncarnationConnector` in src/client.rs).
pub(crate) type Dial = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = std::io::Result<crate::client::Watched>> + Send>>
        + Send
        + Sync,
>;

/// A cheap-to-clone handle on one incarnation's unary connection; a `tower::Service` carrying gRPC.
#[derive(Clone)]
pub(crate) struct UnaryConnection {
    shared: Arc<Shared>,
}

struct Shared {
    authority: uri::Authority,
    dial: Dial,
    connect_timeout: Duration,
    /// The live connection's request handle and its generation (so a failed handle is replaced
    /// once, not by every call that saw it fail).
    current: Mutex<Option<(u64, h2::client::SendRequest<Bytes>)>>,
    /// Held while dialling, so concurrent calls share one new connection.
    dialling: tokio::sync::Mutex<u64>,
}

impl UnaryConnection {
    /// Dials the connection now, so a new client starts with a live one.
    pub(crate) async fn connect(
        authority: uri::Authority,
        dial: Dial,
        connect_timeout: Duration,
    ) -> std::result::Result<Self, BoxError> {
        let connection = Self {
            shared: Arc::new(Shared {
                authority,
                dial,
                connect_timeout,
                current: Mutex::new(None),
                dialling: tokio::sync::Mutex::new(0),
            }),
        };
        connection.shared.redial(None).await?;
        Ok(connection)
    }
}

impl Shared {
    fn current(&self) -> Option<(u64, h2::client::SendRequest<Bytes>)> {
        self.current
            .lock()
            .map(|current| current.clone())
            .unwrap_or(None)
    }

    /// A handle ready to open a stream: the live connection's, or a new connection's when it has
    /// failed or been closed (GOAWAY). A handle that is not ready has sent nothing.
    async fn ready(&self) -> std::result::Result<h2::client::SendRequest<Bytes>, BoxError> {
        let failed = match self.current() {
            Some((generation, sender)) => match sender.ready().await {
                Ok(sender) => return Ok(sender),
                Err(error) => {
                    log::debug!("anysync: the unary connection ended ({error}); dialling again");
                    Some(generation)
                }
            },
            None => None,
        };
        let sender = self.redial(failed).await?;
        Ok(sender.ready().await?)
    }

    /// Dials a new connection unless another call already replaced generation `failed` (or, with
    /// `None`, unless there is a connection).
    async fn redial(
        &self,
        failed: Option<u64>,
    ) -> std::result::Result<h2::client::SendRequest<Bytes>, BoxError> {
        let mut generation = self.dialling.lock().await;
        if let Some((current, sender)) = self.current() {
            if Some(current) != failed {
                return Ok(sender);
            }
        }
        let handshake = async {
            let io = (self.dial)().await?;
            let (sender, connection) = h2::client::Builder::new()
                .enable_push(false)
                .initial_window_size(STREAM_WINDOW_BYTES)
                .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
                .max_header_list_size(MAX_HEADER_LIST_BYTES)
                .handshake::<_, Bytes>(io)
                .await?;
            Ok::<_, BoxError>((sender, connection))
        };
        let (sender, connection) = tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the backend at {} did not complete the HTTP/2 handshake within {:?}",
                        self.authority, self.connect_timeout
                    ),
                )
            })??;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                log::debug!("anysync: unary connection closed: {error}");
            }
        });
        *generation += 1;
        if let Ok(mut current) = self.current.lock() {
            *current = Some((*generation, sender.clone()));
        }
        Ok(sender)
    }
}

impl Service<http::Request<Body>> for UnaryConnection {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        // Readiness is the connection's, awaited inside `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (mut head, mut body) = request.into_parts();
            // tonic gives the path; HTTP/2 needs the scheme and authority too.
            let mut uri = uri::Parts::default();
            uri.scheme = Some(uri::Scheme::HTTP);
            uri.authority = Some(shared.authority.clone());
            uri.path_and_query = head.uri.path_and_query().cloned();
            head.uri = Uri::from_parts(uri)?;
            // A unary request is one encoded message, ready at once: taken whole, so that its
            // HEADERS and DATA are queued together, before the connection's task writes them.
            let data = collect(&mut body).await?;
            let mut sender = shared.ready().await?;
            let (response, mut send) =
                sender.send_request(http::Request::from_parts(head, ()), data.is_empty())?;
            let sent = if data.is_empty() {
                Ok(())
            } else {
                send.send_data(data, true)
            };
            let response = answer(response, sent).await?;
            Ok(response.map(|recv| {
                Body::new(ResponseBody {
                    recv,
                    data_done: false,
                })
            }))
        })
    }
}

/// The call's response, given how handing its body to h2 went.
///
/// A server may answer before it reads the request: grpc-go answers an unknown method with trailers
/// alone and then resets the stream. When the connection's task takes that in between the caller's
/// `send_request` and `send_data`, the stream is closed under a body not yet sent, and h2 refuses
/// the body ("inactive stream") although the answer is there. The answer is the call's outcome then
/// (or, if the server reset the stream without one, the reset's reason); a refused body is the
/// error only while the stream is still open, where no answer would ever come.
async fn answer(
    mut response: h2::client::ResponseFuture,
    sent: std::result::Result<(), h2::Error>,
) -> std::result::Result<http::Response<h2::RecvStream>, BoxError> {
    let Err(refused) = sent else {
        return Ok(response.await?);
    };
    // A closed stream's answer (or its reset) is already in, so one poll tells.
    match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut response).poll(cx))).await {
        Poll::Ready(answered) => Ok(answered?),
        Poll::Pending => Err(refused.into()),
    }
}

/// Every data frame of `body`, in one buffer (one frame, as tonic encodes a unary message, is not
/// copied).
async fn collect(body: &mut Body) -> std::result::Result<Bytes, BoxError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else {
            continue; // request trailers: gRPC clients send none
        };
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut joined = BytesMut::from(&head[..]);
                joined.extend_from_slice(&data);
                rest = Some(joined);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&data),
        }
    }
    Ok(match rest {
        Some(joined) => joined.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// A response's body: its DATA frames (each released back to the flow-control window as it is
/// taken), then its trailers.
struct ResponseBody {
    recv: h2::RecvStream,
    data_done: bool,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An HTTP/2 server on loopback that answers every request with `200` and its body echoed,
    /// and closes each connection gracefully (GOAWAY) after its first answer, as a backend does
    /// with an idle connection. Returns its address and the connections it accepted.
    async fn one_answer_per_connection() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut connection = h2::server::handshake(socket).await.expect("handshake");
                    let Some(Ok((request, mut respond))) = connection.accept().await else {
                        return;
                    };
                    // h2 makes progress only while its connection is polled: the echo runs
                    // beside it.
                    let mut echo = tokio::spawn(async move {
                        let mut body = request.into_body();
                        let mut echoed = BytesMut::new();
                        while let Some(Ok(data)) = body.data().await {
                            let _ = body.flow_control().release_capacity(data.len());
                            echoed.extend_from_slice(&data);
                        }
                        let mut send = respond
                            .send_response(http::Response::new(()), false)
                            .expect("respond");
                        send.send_data(echoed.freeze(), true).expect("data");
                    });
                    loop {
                        tokio::select! {
                            _ = &mut echo => break,
                            next = connection.accept() => if next.is_none() { return },
                        }
                    }
                    connection.graceful_shutdown();
                    while connection.accept().await.is_some() {}
                });
            }
        });
        (addr, accepted)
    }

    /// An HTTP/2 server on loopback that ends its first request at once, before reading any of its
    /// body: with an answer, the way grpc-go answers an unknown method (trailers alone,
    /// `grpc-status: 12`, then a reset of the stream), or with `refusal` alone.
    async fn ends_before_reading(refusal: Option<h2::Reason>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            let mut connection = h2::server::handshake(socket).await.expect("handshake");
            if let Some(Ok((request, mut respond))) = connection.accept().await {
                drop(request);
                if let Some(reason) = refusal {
                    respond.send_reset(reason);
                } else {
                    let trailers_only = http::Response::builder()
                        .header("grpc-status", "12")
                        .body(())
                        .expect("response");
                    respond.send_response(trailers_only, true).expect("respond");
                    // With both halves of the stream dropped (`respond` here), h2 resets it
                    // (NO_ERROR) once the answer is written, as grpc-go does.
                }
            }
            while connection.accept().await.is_some() {}
        });
        addr
    }

    /// Sends a request's headers to `addr`, waits until the server's reset is in, and only then
    /// hands h2 the body: what the race in `call` comes to, made certain. Returns the response
    /// (or the error) `answer` makes of that.
    async fn body_after_the_reset(
        addr: std::net::SocketAddr,
        expected_reset: h2::Reason,
    ) -> std::result::Result<http::Response<h2::RecvStream>, BoxError> {
        let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) = h2::client::handshake(socket).await.expect("handshake");
        tokio::spawn(connection);
        let mut sender = sender.ready().await.expect("ready");
        let request = http::Request::post("http://localhost/anysync.v1.HealthService/Nope")
            .body(())
            .expect("request");
        let (response, mut send) = sender.send_request(request, false).expect("headers");
        let reset = std::future::poll_fn(|cx| send.poll_reset(cx))
            .await
            .expect("the server's reset");
        assert_eq!(reset, expected_reset);
        let sent = send.send_data(Bytes::from_static(b"\0\0\0\0\0"), true);
        assert!(sent.is_err(), "h2 refuses a body on a closed stream");
        answer(response, sent).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_that_closed_the_stream_before_the_body_was_sent_is_the_outcome() {
        let addr = ends_before_reading(None).await;
        let response = body_after_the_reset(addr, h2::Reason::NO_ERROR)
            .await
            .expect("the server's answer");
        assert_eq!(
            response.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"12"[..]),
            "{response:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusal_before_the_body_was_sent_is_the_error_not_the_refused_body() {
        let addr = ends_before_reading(Some(h2::Reason::REFUSED_STREAM)).await;
        let error = body_after_the_reset(addr, h2::Reason::REFUSED_STREAM)
            .await
            .expect_err("refused");
        // The server's reason, which src/client.rs reads to know the call was never processed.
        let h2_error = error.downcast_ref::<h2::Error>().expect("an h2 error");
        assert!(h2_error.is_remote(), "{h2_error}");
        assert_eq!(h2_error.reason(), Some(h2::Reason::REFUSED_STREAM));
    }

    async fn call(connection: &mut UnaryConnection, text: &'static str) -> Bytes {
        let request = http::Request::post("/echo")
            .body(Body::new(String::from(text)))
            .expect("request");
        let response = connection.call(request).await.expect("call");
        collect(&mut response.into_body()).await.expect("body")
    }

    /// Polls until the connection's handle refuses new streams: the server's GOAWAY arrived.
    async fn goaway_received(connection: &UnaryConnection) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, sender) = connection.shared.current().expect("a connection");
            if sender.ready().await.is_err() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no GOAWAY within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_the_server_closed_gracefully_is_dialled_again() {
        let (addr, accepted) = one_answer_per_connection().await;
        let dial: Dial = Arc::new(move || {
            Box::pin(async move {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                Ok(crate::client::Watched::for_tests(stream))
            })
        });
        let authority = addr.to_string().parse().expect("authority");
        let mut connection = UnaryConnection::connect(authority, dial, Duration::from_secs(5))
            .await
            .expect("connect");
        for text in ["first", "second", "third"] {
            // Each call after the first finds its connection closed by the server's GOAWAY and
            // goes out on a new one, without an error.
            assert_eq!(&call(&mut connection, text).await[..], text.as_bytes());
            goaway_received(&connection).await;
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "a connection per answer"
        );
    }
}
