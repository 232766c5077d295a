//! A local attacker without the token against the real sidecar.
//!
//! The attacker is a separate process (this test binary re-executed, like `host_process_helper` in
//! lifecycle.rs) that knows only the sidecar's pid. It finds the port the way any local process can
//! (`/proc/PID/fd` socket inodes matched against `/proc/net/tcp`), then tries everything a process
//! without the token could: gRPC without a token and with a guessed one, HTTP/1.1, a TLS ClientHello,
//! random bytes, an oversized HTTP/2 frame, a 100 MB gRPC message, streams that hoard half-sent
//! messages, and 1000 parallel connections. Every attempt must be refused or answered
//! UNAUTHENTICATED, while the app's own calls (the supervisor in the parent test) keep working and
//! the sidecar's memory stays bounded.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tauri_plugin_anysync::State;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

/// Set in the attacker process only: the pid of the sidecar to attack.
const TARGET_ENV: &str = "ANYSYNC_ATTACKER_TARGET_PID";
/// Bound of the sidecar's resident memory during the attack.
const RSS_BOUND_KB: u64 = 100 * 1024;
const PARALLEL_CONNECTIONS: usize = 1000;
/// The server's per-connection stream limit (api/server DefaultMaxConcurrentStreams).
const HOARDING_STREAMS: usize = 128;
/// The server's default message limit (maxMessageBytes).
const MAX_MESSAGE: usize = 4 << 20;

// ---------------------------------------------------------------------------------------------
// The parent: the app, its supervisor, and the watch on the sidecar while the attacker works.
// ---------------------------------------------------------------------------------------------

/// A `kB` field of `/proc/PID/status`: `VmRSS` (resident now) or `VmHWM` (the peak of `VmRSS`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

/// Every `/proc/*/cmdline` and `/proc/*/environ` this user can read, with the pid.
fn readable_process_texts() -> Vec<(String, Vec<u8>)> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for file in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(file)) {
                texts.push((format!("/proc/{name}/{file}"), bytes));
            }
        }
    }
    texts
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_attacker_without_the_token_gets_nothing() {
    let mut config = fast_config(&real_sidecar());
    // Debug logs: every call the backend handles is logged, so a token echoed anywhere would show.
    config.log_level = Some("debug".into());
    // The attack loads a 2-core machine; probes tolerate that, so a restart would mean the attack
    // crashed or wedged the backend, not that the machine was busy.
    config.health_check_interval_ms = Some(500);
    config.health_check_timeout_ms = Some(2_000);
    config.unhealthy_threshold = Some(3);
    config.call_timeout_ms = Some(5_000);
    config.log_buffer = Some(100_000);
    let config = resolve(config);
    let token = config.token().expose().to_owned();
    let (supervisor, recorder) = start(config);
    let status = state_reached(&supervisor, State::Running, Duration::from_secs(10)).await;
    let pid = status.pid.expect("pid");
    let addr: SocketAddr = status.addr.expect("addr").parse().expect("addr");
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST), "{addr}");
    supervisor.ping("before".into()).await.expect("ping");
    let rss_before = vm_rss_kb(pid).expect("VmRSS");

    let mut attacker = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "attacker_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TARGET_ENV, pid.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("attacker process");
    let attacker_pid = attacker.id().expect("attacker pid");
    let mut attacker_stdout = attacker.stdout.take().expect("stdout");
    let mut attacker_stderr = attacker.stderr.take().expect("stderr");
    let output = tokio::spawn(async move {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = tokio::join!(
            attacker_stdout.read_to_string(&mut out),
            attacker_stderr.read_to_string(&mut err)
        );
        (out, err)
    });

    // While the attacker works: the app keeps calling, and the sidecar's memory is sampled.
    let mut peak_rss = rss_before;
    let (mut calls, mut slowest) = (0u64, Duration::ZERO);
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let exit = loop {
        if let Some(exit) = attacker.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the attacker did not finish within 180 s"
        );
        if let Some(rss) = vm_rss_kb(pid) {
            peak_rss = peak_rss.max(rss);
        }
        calls += 1;
        let message = format!("app call {calls} during the attack");
        let started = Instant::now();
        match supervisor.ping(message.clone()).await {
            Ok(answer) if answer.message == message => {}
            other => failures.push(format!("{message}: {other:?}")),
        }
        slowest = slowest.max(started.elapsed());
        // Pacing: the app calls about every 20 ms, like a busy front end.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The kernel's high-water mark catches a peak between two samples.
    peak_rss = peak_rss.max(status_kb(pid, "VmHWM").expect("VmHWM"));
    let (out, err) = output.await.expect("attacker output");
    println!("{out}");
    assert!(
        exit.success(),
        "the attacker failed ({exit}):\n{out}\n{err}"
    );
    for line in out.lines().filter(|l| l.starts_with("ATTACK ")) {
        println!("{line}");
    }

    println!(
        "sidecar VmRSS before {} MB, peak during the attack {} MB (bound {} MB)",
        rss_before / 1024,
        peak_rss / 1024,
        RSS_BOUND_KB / 1024
    );
    println!(
        "app calls during the attack: {calls}, failed {}, slowest {slowest:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "the app's own calls failed during the attack: {failures:#?}"
    );
    assert!(
        peak_rss < RSS_BOUND_KB,
        "sidecar VmRSS peaked at {peak_rss} kB (bound {RSS_BOUND_KB} kB)"
    );

    // The attack neither crashed nor wedged the backend, and the app still gets answers.
    let after = supervisor.status();
    assert_eq!(
        (after.state, after.pid, after.restarts),
        (State::Running, Some(pid), 0),
        "{after:?}"
    );
    assert_eq!(
        supervisor.ping("after".into()).await.expect("ping").message,
        "after"
    );

    // The token is in no process's argv or environment, the attacker's included (it has exited, so
    // check it was not handed one: its environment was ours, and ours has none).
    let texts = readable_process_texts();
    assert!(
        texts
            .iter()
            .any(|(path, _)| path == &format!("/proc/{pid}/environ")),
        "the sidecar's environ was scanned"
    );
    let leaks: Vec<&String> = texts
        .iter()
        .filter(|(_, bytes)| contains(bytes, &token))
        .map(|(path, _)| path)
        .collect();
    assert!(leaks.is_empty(), "the token is readable in {leaks:?}");
    println!(
        "scanned {} readable /proc/*/cmdline and environ files (attacker pid was {attacker_pid}): no token",
        texts.len()
    );

    // Neither the real token nor the attacker's guesses appear in any log record.
    let guessed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("GUESSED_TOKEN "))
        .collect();
    assert!(!guessed.is_empty(), "the attacker reports its guesses");
    let records = recorder.logs.lock().expect("lock").clone();
    assert!(
        records.len() > 10,
        "debug logging produced records: {}",
        records.len()
    );
    for record in records.iter().chain(supervisor.logs().iter()) {
        let json = serde_json::to_string(record).expect("json");
        assert!(
            !json.contains(&token),
            "the token is in a log record: {json}"
        );
        for guess in &guessed {
            assert!(
                !json.contains(guess),
                "a presented token was logged: {json}"
            );
        }
    }
    supervisor.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The attacker process.
// ---------------------------------------------------------------------------------------------

/// Not a test on its own: the attacker process of `a_local_attacker_without_the_token_gets_nothing`,
/// re-executed from this test binary with the sidecar's pid and nothing else.
#[test]
fn attacker_process() {
    let Some(pid) = std::env::var(TARGET_ENV).ok() else {
        return;
    };
    let pid: u32 = pid.parse().expect("pid");
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(attack(pid));
}

fn report(name: &str, outcome: impl std::fmt::Display) {
    println!("ATTACK {name}: {outcome}");
}

async fn attack(pid: u32) {
    let port = find_port(pid);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    report(
        "find the port",
        format!("{addr}, the only LISTEN socket of pid {pid}, bound to 127.0.0.1 only"),
    );

    grpc_without_a_valid_token(addr).await;
    http1_requests(addr).await;
    tls_client_hello(addr).await;
    random_bytes(addr).await;
    oversized_http2_frame(addr).await;
    hundred_megabyte_message(addr).await;
    hoarding_half_sent_messages(addr).await;
    parallel_connections(addr).await;
}

/// Lets this process hold the 1000 connections (the soft limit is often 1024).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The port of the sidecar's one listening TCP socket, found like any local process can: its socket
/// inodes (`/proc/PID/fd`) matched against the kernel's socket tables (`/proc/net/tcp`, `tcp6`).
/// Asserts that it listens on 127.0.0.1 and nowhere else.
fn find_port(pid: u32) -> u16 {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the sidecar's fds")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    assert!(!inodes.is_empty(), "the sidecar has sockets");
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).expect("socket table");
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // sl local rem st queues timer retrnsmt uid timeout inode
            if cols.len() > 9 && cols[3] == "0A" && inodes.iter().any(|i| i == cols[9]) {
                listening.push(parse_socket_addr(cols[1]));
            }
        }
    }
    assert_eq!(
        listening.len(),
        1,
        "exactly one listening socket: {listening:?}"
    );
    let addr = listening[0];
    assert_eq!(
        addr.ip(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "the sidecar must listen on 127.0.0.1 only, not {addr}"
    );
    addr.port()
}

/// `0100007F:A9F3` (IPv4) or 32 hex digits and a port (IPv6), as the kernel prints them: each 32-bit
/// word in host byte order.
fn parse_socket_addr(text: &str) -> SocketAddr {
    let (ip, port) = text.split_once(':').expect("ip:port");
    let port = u16::from_str_radix(port, 16).expect("port");
    let words: Vec<[u8; 4]> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16)
                .expect("hex")
                .to_ne_bytes()
        })
        .collect();
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(Ipv4Addr::from(*w)),
        words => {
            let mut bytes = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(w);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
    };
    SocketAddr::new(ip, port)
}

// --- gRPC without the token -----------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
struct PingRequest {
    #[prost(string, tag = "1")]
    message: String,
}

/// Any response: an attacker who got one at all has won, whatever it decodes to.
#[derive(Clone, PartialEq, prost::Message)]
struct AnyResponse {}

async fn channel(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// One unary call with the given `authorization` values.
async fn call(
    channel: Channel,
    path: &'static str,
    message: PingRequest,
    authorization: &[String],
) -> Result<AnyResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(30));
    for value in authorization {
        request.metadata_mut().append(
            "authorization",
            value.parse().expect("an ASCII header value"),
        );
    }
    grpc.unary(
        request,
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::<PingRequest, AnyResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

fn expect_unauthenticated(what: &str, outcome: Result<AnyResponse, tonic::Status>) {
    match outcome {
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            report(what, format!("UNAUTHENTICATED ({})", status.message()));
        }
        other => panic!("{what}: expected UNAUTHENTICATED, got {other:?}"),
    }
}

fn guessed_token() -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let guess: String = (0..43)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect();
    println!("GUESSED_TOKEN {guess}");
    guess
}

async fn grpc_without_a_valid_token(addr: SocketAddr) {
    let channel = channel(addr).await.expect("plain TCP connect works");
    let ping = || PingRequest {
        message: "let me in".into(),
    };
    let guess = guessed_token();
    let cases: Vec<(&str, &'static str, Vec<String>)> = vec![
        (
            "Ping without a token",
            "/anysync.v1.HealthService/Ping",
            vec![],
        ),
        (
            "Ping with a guessed token",
            "/anysync.v1.HealthService/Ping",
            vec![format!("Bearer {guess}")],
        ),
        (
            "Check with a guessed token",
            "/anysync.v1.HealthService/Check",
            vec![format!("Bearer {guess}")],
        ),
        (
            "Ping with an empty bearer",
            "/anysync.v1.HealthService/Ping",
            vec!["Bearer ".into()],
        ),
        (
            "Ping with Basic auth",
            "/anysync.v1.HealthService/Ping",
            vec!["Basic YWRtaW46YWRtaW4=".into()],
        ),
        (
            "Ping with two authorization values",
            "/anysync.v1.HealthService/Ping",
            vec![
                format!("Bearer {guess}"),
                format!("Bearer {}", guessed_token()),
            ],
        ),
        (
            "grpc.health.v1.Health/Check without a token",
            "/grpc.health.v1.Health/Check",
            vec![],
        ),
        (
            "server reflection without a token",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            vec![],
        ),
        (
            "an unknown method without a token",
            "/anysync.v1.HealthService/Shutdown",
            vec![],
        ),
    ];
    for (what, path, authorization) in cases {
        expect_unauthenticated(
            what,
            call(channel.clone(), path, ping(), &authorization).await,
        );
    }
}

// --- not gRPC at all --------------------------------------------------------------------------

/// Writes `bytes` (tolerating a peer that stops reading) and reads whatever comes back until the
/// server closes the connection; fails if it stays open past `within`.
async fn send_and_read_until_closed(addr: SocketAddr, bytes: &[u8], within: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {within:?}"
    );
    answer
}

/// What the server said before closing: nothing, or an HTTP/2 frame (its SETTINGS, a GOAWAY).
fn describe_answer(answer: &[u8]) -> String {
    if answer.is_empty() {
        return "closed without a byte".into();
    }
    let frames = http2_frame_types(answer);
    format!(
        "closed after {} bytes of HTTP/2 frames {frames:?}",
        answer.len()
    )
}

/// The types of the HTTP/2 frames in `bytes` (4 = SETTINGS, 7 = GOAWAY, ...), or a panic if `bytes`
/// is anything else, such as an HTTP/1.1 response or a TLS record.
fn http2_frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        types.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    assert!(
        rest.is_empty() && types.iter().all(|t| *t <= 9),
        "the server answered with something other than HTTP/2 frames: {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    types
}

async fn http1_requests(addr: SocketAddr) {
    let within = Duration::from_secs(10);
    let requests = [
        (
            "HTTP/1.1 GET from a web page",
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nAccept: */*\r\n\r\n"),
        ),
        (
            "HTTP/1.1 POST with a rebinding Host",
            "POST /anysync.v1.HealthService/Ping HTTP/1.1\r\nHost: rebind.evil.example\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0".into(),
        ),
        (
            "HTTP/1.1 upgrade to h2c",
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
        ),
    ];
    for (what, request) in requests {
        let answer = send_and_read_until_closed(addr, request.as_bytes(), within).await;
        assert!(
            !answer.starts_with(b"HTTP/"),
            "{what}: the server answered HTTP/1"
        );
        report(what, describe_answer(&answer));
    }
}

/// A well-formed TLS 1.2/1.3 ClientHello with SNI.
fn client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x03]; // client_version TLS 1.2
    body.extend((0..32).map(|_| fastrand::u8(..))); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0x13, 0x01, 0xc0, 0x2f]); // two cipher suites
    body.extend([0x01, 0x00]); // null compression
    let host = b"127.0.0.1";
    let mut sni = vec![0x00];
    sni.extend((host.len() as u16).to_be_bytes());
    sni.extend(host);
    let mut sni_ext = ((sni.len()) as u16).to_be_bytes().to_vec();
    sni_ext.extend(sni);
    let mut extensions = vec![0x00, 0x00];
    extensions.extend((sni_ext.len() as u16).to_be_bytes());
    extensions.extend(sni_ext);
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

async fn tls_client_hello(addr: SocketAddr) {
    let answer = send_and_read_until_closed(addr, &client_hello(), Duration::from_secs(10)).await;
    assert!(
        answer.first() != Some(&0x16),
        "the server answered with a TLS handshake record"
    );
    report("TLS ClientHello", describe_answer(&answer));
}

async fn random_bytes(addr: SocketAddr) {
    let noise: Vec<u8> = (0..1 << 20).map(|_| fastrand::u8(..)).collect();
    let answer = send_and_read_until_closed(addr, &noise, Duration::from_secs(10)).await;
    report("1 MiB of random bytes", describe_answer(&answer));
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP/2 preface and an empty SETTINGS frame, then a DATA frame header announcing the largest
/// length HTTP/2 can encode (16 MiB - 1; the 100 MB the brief names does not fit in 24 bits), then
/// 100 MB of body. The server must drop the connection long before it has read them.
async fn oversized_http2_frame(addr: SocketAddr) {
    const BODY: usize = 100_000_000;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut hello = PREFACE.to_vec();
    hello.extend([0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    hello.extend([0xff, 0xff, 0xff, 0x0, 0, 0, 0, 0, 1]); // DATA, 16 MiB - 1, stream 1
    stream.write_all(&hello).await.expect("preface");
    let chunk = vec![0u8; 1 << 20];
    let mut sent = 0usize;
    let started = Instant::now();
    let refused = loop {
        if sent >= BODY {
            break None;
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            Ok(Err(error)) => break Some(error.to_string()),
            Err(_) => break Some("the server stopped reading".into()),
        }
    };
    let refused = refused.unwrap_or_else(|| {
        panic!("the server accepted a 16 MiB frame header and {BODY} bytes of body")
    });
    report(
        "HTTP/2 frame of 16 MiB - 1 with 100 MB of body",
        format!(
            "refused after {} MB in {:?}: {refused}",
            sent / 1_000_000,
            started.elapsed()
        ),
    );
}

/// A real gRPC call whose message is 100 MB, without a token.
async fn hundred_megabyte_message(addr: SocketAddr) {
    let channel = channel(addr).await.expect("connect");
    let started = Instant::now();
    let outcome = call(
        channel,
        "/anysync.v1.HealthService/Ping",
        PingRequest {
            message: "x".repeat(100_000_000),
        },
        &[],
    )
    .await;
    expect_unauthenticated(
        &format!(
            "100 MB gRPC message without a token (answered in {:?})",
            started.elapsed()
        ),
        outcome,
    );
}

/// One connection with as many streams as the server allows, each sending all but the last byte of
/// a message of the largest allowed size and then waiting: a server that reads messages before it
/// checks the token would hold 128 x 4 MiB for a caller it knows nothing about.
async fn hoarding_half_sent_messages(addr: SocketAddr) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::Builder::new()
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .expect("HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let body = bytes::Bytes::from(vec![b'x'; MAX_MESSAGE - 1]);
    let mut prefix = vec![0u8];
    prefix.extend((MAX_MESSAGE as u32).to_be_bytes());
    let prefix = bytes::Bytes::from(prefix);
    let mut pending = Vec::new();
    for _ in 0..HOARDING_STREAMS {
        let mut client = client.clone().ready().await.expect("stream slot");
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/anysync.v1.HealthService/Ping"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let (response, mut stream) = client.send_request(request, false).expect("send");
        let _ = stream.send_data(prefix.clone(), false);
        let _ = stream.send_data(body.clone(), false);
        pending.push((response, stream));
    }
    // Each stream must be answered now, without the rest of its message.
    let mut codes = BTreeMap::<String, usize>::new();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        for (response, _stream) in &mut pending {
            let code = match response.await {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(
                        || "no grpc-status".to_owned(),
                        |c| format!("grpc-status {c}"),
                    ),
                Err(error) => format!("reset: {error}"),
            };
            *codes.entry(code).or_default() += 1;
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "the server sat on half-sent messages of an unauthenticated caller instead of refusing them (answers so far: {codes:?})"
    );
    // 16 is UNAUTHENTICATED.
    assert_eq!(
        codes.get("grpc-status 16"),
        Some(&HOARDING_STREAMS),
        "{codes:?}"
    );
    report(
        &format!("{HOARDING_STREAMS} streams each holding a half-sent 4 MiB message"),
        format!("all answered UNAUTHENTICATED at once: {codes:?}"),
    );
    drop(pending);
    driver.abort();
}

async fn parallel_connections(addr: SocketAddr) {
    let barrier = Arc::new(tokio::sync::Barrier::new(PARALLEL_CONNECTIONS));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PARALLEL_CONNECTIONS {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let channel = channel(addr).await;
            // Every connection is open (or refused) before any call: 1000 at once.
            barrier.wait().await;
            let outcome = match &channel {
                Err(error) => Err(format!("refused: {error}")),
                Ok(channel) => Ok(call(
                    channel.clone(),
                    "/anysync.v1.HealthService/Ping",
                    PingRequest {
                        message: "flood".into(),
                    },
                    &[],
                )
                .await
                .map_err(|s| s.code())),
            };
            // Hold every connection until every task has its answer.
            barrier.wait().await;
            drop(channel);
            outcome
        });
    }
    let mut outcomes = BTreeMap::<String, usize>::new();
    let all = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(joined) = tasks.join_next().await {
            let key = match joined.expect("task") {
                Ok(Err(tonic::Code::Unauthenticated)) => "UNAUTHENTICATED".to_owned(),
                Err(refused) => {
                    println!("refused connection: {refused}");
                    "connection refused".to_owned()
                }
                Ok(other) => panic!("a flood call got {other:?}"),
            };
            *outcomes.entry(key).or_default() += 1;
        }
    })
    .await;
    assert!(all.is_ok(), "the flood did not finish: {outcomes:?}");
    report(
        &format!("{PARALLEL_CONNECTIONS} parallel connections, each calling without a token"),
        format!("{outcomes:?} in {:?}", started.elapsed()),
    );
}
