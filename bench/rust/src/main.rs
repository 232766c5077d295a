//! The Rust side of `npm run bench` (see bench/README.md): runs the Rust-side baselines (B0 raw TCP
//! echo, B2 spawn-and-exit, B3 idle gRPC server RSS) and variants (V1, V3, V4, V5, V6) through the
//! plugin's public [`Supervisor`], interleaved in blocks, and writes every raw sample as JSON.
//! Statistics and thresholds live in bench/run.ts, so this binary only measures.
//!
//! Usage: `anysync-bench --sidecar PATH --echo PATH --nop PATH --grpc PATH --out FILE [--smoke]`, or
//! `anysync-bench --sidecar PATH --profile-seconds N` to call V1 for N seconds under a profiler.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use serde_json::{json, Value};
use tauri_plugin_anysync::proto::{PingRequest, PingResponse};
use tauri_plugin_anysync::{Config, State, Supervisor, SupervisorConfig};
use tokio::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

/// How many samples each part takes: the full run, or the smoke run (no thresholds, seconds).
struct Scale {
    /// Rounds of interleaved blocks for the latency and payload groups.
    rounds: usize,
    /// Calls per block at 16 B and 1 KiB (concurrency 1, 16 and 64 alike).
    block: usize,
    /// Calls per block at 64 KiB and at 1 MiB.
    block_64k: usize,
    block_1m: usize,
    /// Rounds and samples per block of B2/V4 (spawns).
    spawn_rounds: usize,
    spawn_block: usize,
    /// SIGKILLs in V5.
    kills: usize,
    /// Calls between the two V6 RSS readings.
    rss_calls: usize,
    /// Idle time before an RSS reading.
    settle: Duration,
}

const FULL: Scale = Scale {
    rounds: 10,
    block: 1_000,
    block_64k: 500,
    block_1m: 30,
    spawn_rounds: 10,
    spawn_block: 20,
    kills: 40,
    rss_calls: 10_000,
    settle: Duration::from_secs(2),
};

const SMOKE: Scale = Scale {
    rounds: 2,
    block: 100,
    block_64k: 50,
    block_1m: 5,
    spawn_rounds: 2,
    spawn_block: 5,
    kills: 3,
    rss_calls: 1_000,
    settle: Duration::from_millis(300),
};

const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

struct Args {
    sidecar: PathBuf,
    mode: Mode,
}

enum Mode {
    /// Every measurement.
    Measure(Measured),
    /// Only V1 on the generic path, back to back for a while, for a profiler to watch
    /// (bench/profile.ts).
    Profile { seconds: u64 },
}

fn parse_args() -> Result<Args> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut smoke = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--smoke" {
            smoke = true;
        } else if let Some(key) = arg.strip_prefix("--") {
            let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            values.insert(key.to_owned(), value);
        } else {
            return Err(format!("unexpected argument {arg}").into());
        }
    }
    let profile_seconds = values.remove("profile-seconds");
    let mut path = |key: &str| -> Result<PathBuf> {
        values
            .remove(key)
            .map(PathBuf::from)
            .ok_or_else(|| format!("--{key} is required").into())
    };
    let sidecar = path("sidecar")?;
    let mode = match profile_seconds {
        Some(seconds) => Mode::Profile {
            seconds: seconds
                .parse()
                .map_err(|e| format!("--profile-seconds {seconds}: {e}"))?,
        },
        None => Mode::Measure(Measured {
            echo: path("echo")?,
            nop: path("nop")?,
            grpc: path("grpc")?,
            out: path("out")?,
            smoke,
        }),
    };
    Ok(Args { sidecar, mode })
}

/// Profile mode: warms up, then calls V1G (16 B, concurrency 1) for `seconds`, prints what the
/// calls cost each side in CPU, and stops the sidecar gracefully (which ends its CPU profile).
fn profile(sidecar: &std::path::Path, seconds: u64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let supervisor = Arc::new(Supervisor::start_on(
        rt.handle(),
        config(sidecar, |_| {})?,
        Arc::new(()),
    ));
    rt.block_on(supervisor.health())?;
    rt.block_on(ping_block_on(&supervisor, CallPath::Generic, 16, 2_000, 1))?;
    let pid = supervisor.status().pid.ok_or("the sidecar has no pid")?;
    let mut cpu = CpuSplit::default();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut samples = Vec::new();
    while Instant::now() < until {
        let before = CpuSplit::now(pid);
        let (block, _) =
            rt.block_on(ping_block_on(&supervisor, CallPath::Generic, 16, 1_000, 1))?;
        cpu.add_since(&before, pid, block.len());
        samples.extend(block);
    }
    samples.sort();
    let p50 = samples.get(samples.len() / 2).copied().unwrap_or_default();
    println!(
        "PROFILE driverPid={} sidecarPid={pid} calls={} p50Us={:.1} cpu={}",
        std::process::id(),
        samples.len(),
        p50.as_secs_f64() * 1e6,
        cpu.json()
    );
    rt.block_on(supervisor.shutdown());
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    match args.mode {
        Mode::Profile { seconds } => profile(&args.sidecar, seconds),
        Mode::Measure(measured) => measure(&args.sidecar, &measured),
    }
}

/// The baselines' binaries and the output of a measuring run.
struct Measured {
    echo: PathBuf,
    nop: PathBuf,
    grpc: PathBuf,
    out: PathBuf,
    smoke: bool,
}

fn measure(sidecar: &std::path::Path, args: &Measured) -> Result<()> {
    let scale = if args.smoke { &SMOKE } else { &FULL };
    // Like Tauri's own async runtime: multi-threaded, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut blocks = Vec::new();

    eprintln!("bench: B0/V1 latency and concurrency, then B0/V3 payloads");
    let supervisor = Arc::new(Supervisor::start_on(
        rt.handle(),
        config(sidecar, |_| {})?,
        Arc::new(()),
    ));
    rt.block_on(supervisor.health())?;
    let mut echo = EchoClient::start(&args.echo)?;
    // Warm-up: connections, allocator, caches, and the Go runtime's goroutine pools.
    for size in SIZES {
        let calls = if size >= 1 << 20 { 5 } else { 200 };
        echo.block(size, calls)?;
        rt.block_on(ping_block(&supervisor, size, calls, 1))?;
    }
    rt.block_on(ping_block_on(&supervisor, CallPath::Generic, 16, 200, 1))?;
    let sidecar_pid = supervisor.status().pid.ok_or("the sidecar has no pid")?;
    let (mut b0_cpu, mut v1_cpu) = (CpuSplit::default(), CpuSplit::default());
    for round in 0..scale.rounds {
        let before = CpuSplit::now(echo.child.id());
        blocks.push(block_json("B0", 16, 1, round, echo.block(16, scale.block)?));
        b0_cpu.add_since(&before, echo.child.id(), scale.block);
        for conc in [1, 16, 64] {
            let before = CpuSplit::now(sidecar_pid);
            let result = rt.block_on(ping_block(&supervisor, 16, scale.block, conc))?;
            if conc == 1 {
                v1_cpu.add_since(&before, sidecar_pid, scale.block);
            }
            blocks.push(block_json("V1", 16, conc, round, result));
        }
        let result = rt.block_on(ping_block_on(
            &supervisor,
            CallPath::Generic,
            16,
            scale.block,
            1,
        ))?;
        blocks.push(block_json("V1G", 16, 1, round, result));
    }
    for round in 0..scale.rounds {
        for size in SIZES {
            let calls = match size {
                s if s >= 1 << 20 => scale.block_1m,
                s if s >= 64 << 10 => scale.block_64k,
                _ => scale.block,
            };
            blocks.push(block_json("B0", size, 1, round, echo.block(size, calls)?));
            let result = rt.block_on(ping_block(&supervisor, size, calls, 1))?;
            blocks.push(block_json("V3", size, 1, round, result));
        }
    }
    let v1_pid = supervisor.status().pid;
    let v1_rss_after_all = v1_pid.and_then(rss_kib);
    echo.stop();
    rt.block_on(supervisor.shutdown());

    eprintln!("bench: B2/V4 spawn");
    let v4_config = config(sidecar, |_| {})?;
    for _ in 0..3 {
        spawn_nop(&args.nop)?;
        rt.block_on(spawn_to_healthy(&rt, &v4_config))?;
    }
    for round in 0..scale.spawn_rounds {
        let mut b2 = Vec::with_capacity(scale.spawn_block);
        let started = Instant::now();
        for _ in 0..scale.spawn_block {
            b2.push(spawn_nop(&args.nop)?);
        }
        blocks.push(block_json("B2", 0, 1, round, (b2, started.elapsed())));
        let mut v4 = Vec::with_capacity(scale.spawn_block);
        let started = Instant::now();
        for _ in 0..scale.spawn_block {
            v4.push(rt.block_on(spawn_to_healthy(&rt, &v4_config))?);
        }
        blocks.push(block_json("V4", 0, 1, round, (v4, started.elapsed())));
    }

    eprintln!("bench: V5 SIGKILL under a steady ping stream");
    let v5 = rt.block_on(kill_recovery(&rt, sidecar, scale.kills))?;

    eprintln!("bench: B3/V6 RSS");
    let b3_idle = grpc_idle_rss(&args.grpc, scale.settle)?;
    let (v6_idle, v6_after) = rt.block_on(sidecar_rss(&rt, sidecar, scale))?;

    let out = json!({
        "smoke": args.smoke,
        "blocks": blocks,
        "v5": v5,
        "cpu": { "B0": b0_cpu.json(), "V1": v1_cpu.json() },
        "rss": {
            "b3IdleKib": b3_idle,
            "v6IdleKib": v6_idle,
            "v6AfterKib": v6_after,
            "v6Calls": scale.rss_calls,
            "v1AfterAllKib": v1_rss_after_all,
        },
    });
    std::fs::write(&args.out, serde_json::to_vec(&out)?)?;
    eprintln!("bench: wrote {}", args.out.display());
    Ok(())
}

/// The sidecar's configuration for the bench: the defaults an app gets, except what `tweak` changes.
fn config(sidecar: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> Result<SupervisorConfig> {
    let mut config = Config {
        sidecar_path: Some(sidecar.to_owned()),
        ..Config::default()
    };
    tweak(&mut config);
    Ok(config.resolve()?)
}

fn block_json(
    variant: &str,
    size: usize,
    conc: usize,
    round: usize,
    (samples, wall): (Vec<Duration>, Duration),
) -> Value {
    let samples_ns: Vec<u64> = samples.iter().map(|d| nanos(*d)).collect();
    json!({
        "variant": variant,
        "size": size,
        "conc": conc,
        "round": round,
        "wallNs": nanos(wall),
        "samplesNs": samples_ns,
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// B0: a blocking TCP client of `bench-echo` (TCP_NODELAY), the floor of a loopback round trip.
struct EchoClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stream: TcpStream,
    reply: Vec<u8>,
}

impl EchoClient {
    fn start(binary: &std::path::Path) -> Result<Self> {
        let (mut child, addr) = spawn_with_addr(binary)?;
        let stdin = child.stdin.take();
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            child,
            stdin,
            stream,
            reply: Vec::new(),
        })
    }

    /// `calls` round trips of a `size`-byte frame, each timed.
    fn block(&mut self, size: usize, calls: usize) -> Result<(Vec<Duration>, Duration)> {
        let len = u32::try_from(size)?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.resize(4 + size, b'x');
        self.reply.resize(frame.len(), 0);
        let mut samples = Vec::with_capacity(calls);
        let started = Instant::now();
        for _ in 0..calls {
            let t = Instant::now();
            self.stream.write_all(&frame)?;
            self.stream.read_exact(&mut self.reply)?;
            samples.push(t.elapsed());
        }
        let wall = started.elapsed();
        if self.reply != frame {
            return Err("the echo differs from what was sent".into());
        }
        Ok((samples, wall))
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Spawns a baseline server that prints `{"addr":"..."}` and returns it with that address.
fn spawn_with_addr(binary: &std::path::Path) -> Result<(Child, String)> {
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let ready: Value = serde_json::from_str(&line)?;
    let addr = ready["addr"]
        .as_str()
        .ok_or_else(|| format!("{}: no addr in {line:?}", binary.display()))?
        .to_owned();
    Ok((child, addr))
}

/// V1/V3: `calls` pings of a `size`-byte message through the supervisor, `conc` at a time; each
/// call timed, plus the block's wall time (throughput).
async fn ping_block(
    supervisor: &Arc<Supervisor>,
    size: usize,
    calls: usize,
    conc: usize,
) -> Result<(Vec<Duration>, Duration)> {
    ping_block_on(supervisor, CallPath::Typed, size, calls, conc).await
}

/// Which of the plugin's Rust APIs a ping goes through.
#[derive(Clone, Copy)]
enum CallPath {
    /// `Supervisor::ping`: the typed method with the generated client.
    Typed,
    /// `Supervisor::call`: the generic path every RPC takes (prost-encoded bytes in and out).
    Generic,
}

const PING: &str = "anysync.v1.HealthService/Ping";

/// V1G: like [`ping_block`], through `path`.
async fn ping_block_on(
    supervisor: &Arc<Supervisor>,
    path: CallPath,
    size: usize,
    calls: usize,
    conc: usize,
) -> Result<(Vec<Duration>, Duration)> {
    let message = "x".repeat(size);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(conc);
    for worker in 0..conc {
        let supervisor = Arc::clone(supervisor);
        let message = message.clone();
        let share = calls / conc + usize::from(worker < calls % conc);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                let echoed = match path {
                    CallPath::Typed => supervisor.ping(message.clone()).await?.message.len(),
                    CallPath::Generic => {
                        let request = PingRequest {
                            message: message.clone(),
                        }
                        .encode_to_vec();
                        let answer = supervisor.call(PING, Bytes::from(request), None).await?;
                        PingResponse::decode(answer)?.message.len()
                    }
                };
                samples.push(t.elapsed());
                if echoed != message.len() {
                    return Err::<_, BoxError>("the echo differs from what was sent".into());
                }
            }
            Ok(samples)
        }));
    }
    let mut samples = Vec::with_capacity(calls);
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok((samples, started.elapsed()))
}

/// B2: spawn-and-exit of a trivial Go binary.
fn spawn_nop(binary: &std::path::Path) -> Result<Duration> {
    let t = Instant::now();
    let status = Command::new(binary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let elapsed = t.elapsed();
    if !status.success() {
        return Err(format!("{} exited with {status}", binary.display()).into());
    }
    Ok(elapsed)
}

/// V4: a fresh supervisor, from start to its first successful health call (then shut down, untimed).
async fn spawn_to_healthy(rt: &Runtime, config: &SupervisorConfig) -> Result<Duration> {
    let t = Instant::now();
    let supervisor = Supervisor::start_on(rt.handle(), config.clone(), Arc::new(()));
    let result = supervisor.health().await;
    let elapsed = t.elapsed();
    supervisor.shutdown().await;
    result?;
    Ok(elapsed)
}

/// One call of the V5 ping stream.
struct CallRecord {
    start: Instant,
    end: Instant,
    code: Option<&'static str>,
}

/// Pingers running back to back during V5.
const V5_STREAMS: usize = 4;
/// Calls slower than this count as hung in V5 (the call deadline is 10 s).
const V5_HANG: Duration = Duration::from_secs(2);

/// V5: SIGKILL of the sidecar under a steady ping stream; per kill, the time to the first successful
/// call started after it; every failed call's code and duration.
async fn kill_recovery(rt: &Runtime, sidecar: &std::path::Path, kills: usize) -> Result<Value> {
    // Every restart immediate (as the first one is under the default policy) and no restart budget,
    // so each kill measures the mechanism, not the backoff policy.
    let config = config(sidecar, |c| {
        c.backoff_initial_ms = Some(0);
        c.backoff_max_ms = Some(0);
        c.max_restarts = Some(10_000);
    })?;
    let supervisor = Arc::new(Supervisor::start_on(rt.handle(), config, Arc::new(())));
    supervisor.health().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut streams = Vec::new();
    for _ in 0..V5_STREAMS {
        let supervisor = Arc::clone(&supervisor);
        let stop = Arc::clone(&stop);
        streams.push(tokio::spawn(async move {
            let mut records = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let result = supervisor.ping("x".repeat(16)).await;
                records.push(CallRecord {
                    start,
                    end: Instant::now(),
                    code: result.err().map(|e| e.code()),
                });
            }
            records
        }));
    }
    let mut kill_times = Vec::with_capacity(kills);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let pid = running_pid(&supervisor).await?;
        let t = Instant::now();
        // SAFETY: kill(2) of the pid the supervisor reports as its running child.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        if rc != 0 {
            return Err(format!("kill({pid}) failed").into());
        }
        kill_times.push(t);
        // Wait for the replacement before the next kill.
        let deadline = Instant::now() + Duration::from_secs(10);
        while supervisor.status().pid == Some(pid) || supervisor.status().state != State::Running {
            if Instant::now() > deadline {
                return Err("no replacement sidecar within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    let mut records = Vec::new();
    let mut unfinished = 0;
    for stream in streams {
        match tokio::time::timeout(Duration::from_secs(15), stream).await {
            Ok(joined) => records.extend(joined?),
            Err(_) => unfinished += 1,
        }
    }
    supervisor.shutdown().await;

    let mut recovery_ns = Vec::new();
    for (i, &kill) in kill_times.iter().enumerate() {
        let first_ok = records
            .iter()
            .filter(|r| r.code.is_none() && r.start >= kill)
            .map(|r| r.end)
            .min();
        match first_ok {
            Some(end) => recovery_ns.push(nanos(end - kill)),
            None => return Err(format!("no successful call after kill {i}").into()),
        }
    }
    let mut codes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut failed_ns = Vec::new();
    let mut in_flight_at_kill = 0u64;
    let mut max_call = Duration::ZERO;
    let mut hung = 0u64;
    for r in &records {
        let took = r.end - r.start;
        max_call = max_call.max(took);
        if took > V5_HANG {
            hung += 1;
        }
        if kill_times.iter().any(|&k| r.start < k && k < r.end) {
            in_flight_at_kill += 1;
        }
        if let Some(code) = r.code {
            *codes.entry(code).or_default() += 1;
            failed_ns.push(nanos(took));
        }
    }
    Ok(json!({
        "kills": kills,
        "streams": V5_STREAMS,
        "recoveryNs": recovery_ns,
        "calls": records.len(),
        "ok": records.iter().filter(|r| r.code.is_none()).count(),
        "failedByCode": codes,
        "failedNs": failed_ns,
        "inFlightAtKill": in_flight_at_kill,
        "maxCallNs": nanos(max_call),
        "hungOver2s": hung,
        "unfinishedStreams": unfinished,
    }))
}

async fn running_pid(supervisor: &Supervisor) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = supervisor.status();
        if let (State::Running, Some(pid)) = (status.state, status.pid) {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(format!("the sidecar is not running: {:?}", status.state).into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Resident set size of a process, KiB (VmRSS in /proc/PID/status).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// B3: the idle RSS of a minimal grpc-go server.
fn grpc_idle_rss(binary: &std::path::Path, settle: Duration) -> Result<u64> {
    let (mut child, addr) = spawn_with_addr(binary)?;
    // One connection, as the sidecar has one (the supervisor's), then idle.
    let probe = TcpStream::connect(&addr)?;
    std::thread::sleep(settle);
    let rss = rss_kib(child.id()).ok_or("no VmRSS for the gRPC baseline")?;
    drop(probe);
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(rss)
}

/// V6: the sidecar's RSS once idle after start, and after `rss_calls` pings (then idle again).
async fn sidecar_rss(rt: &Runtime, sidecar: &std::path::Path, scale: &Scale) -> Result<(u64, u64)> {
    let supervisor = Arc::new(Supervisor::start_on(
        rt.handle(),
        config(sidecar, |_| {})?,
        Arc::new(()),
    ));
    supervisor.health().await?;
    let pid = running_pid(&supervisor).await?;
    tokio::time::sleep(scale.settle).await;
    let idle = rss_kib(pid).ok_or("no VmRSS for the sidecar")?;
    ping_block(&supervisor, 16, scale.rss_calls, 1).await?;
    tokio::time::sleep(scale.settle).await;
    let after = rss_kib(pid).ok_or("no VmRSS for the sidecar")?;
    supervisor.shutdown().await;
    Ok((idle, after))
}

/// CPU time (user + system) of this process and of a peer process, summed over blocks of calls:
/// which side of a round trip burns the CPU, independent of how loaded the machine is.
#[derive(Default)]
struct CpuSplit {
    own_ticks: u64,
    peer_ticks: u64,
    calls: usize,
}

impl CpuSplit {
    fn now(peer: u32) -> Self {
        Self {
            own_ticks: cpu_ticks("self").unwrap_or(0),
            peer_ticks: cpu_ticks(&peer.to_string()).unwrap_or(0),
            calls: 0,
        }
    }

    fn add_since(&mut self, before: &Self, peer: u32, calls: usize) {
        let after = Self::now(peer);
        self.own_ticks += after.own_ticks.saturating_sub(before.own_ticks);
        self.peer_ticks += after.peer_ticks.saturating_sub(before.peer_ticks);
        self.calls += calls;
    }

    fn json(&self) -> Value {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let per_call_us = |ticks: u64| ticks as f64 / hz * 1e6 / self.calls.max(1) as f64;
        json!({
            "calls": self.calls,
            "rustUsPerCall": per_call_us(self.own_ticks),
            "goUsPerCall": per_call_us(self.peer_ticks),
        })
    }
}

/// utime + stime of /proc/<pid>/stat, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}
