//! Soak and chaos against the real Go sidecar through the public `Supervisor` API.
//!
//! - `calls_under_chaos_get_their_own_answer_or_a_typed_error`: 16 callers ping for a fixed budget
//!   (`ANYSYNC_SOAK_SECS`, default 20 s) while a chaos loop SIGKILLs or SIGSTOPs the sidecar or calls
//!   `restart()` at random moments. Every call answers its own echo or fails with a code a caller
//!   can act on, within its deadline (a manual restart publishes Restarting, never Stopping, so no
//!   call fails NOT_RUNNING); every `restart()` returns a new running backend within its bound; the
//!   supervisor ends `Running`.
//! - `host_fds_and_threads_stay_flat_across_100_restarts`: the host process does not leak file
//!   descriptors or threads across sidecar incarnations.
//!
//! Both run one after the other (they measure and disturb process-wide state).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tauri_plugin_anysync::{State, Supervisor};

/// The two tests measure the host process; neither may run while the other disturbs it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CALLERS: usize = 16;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How far past its deadline a call may return: scheduling on a loaded 2-core machine, not a hang.
const DEADLINE_SLACK: Duration = Duration::from_millis(1_500);

/// The codes a call may fail with while its backend is being killed and replaced, and why each is
/// legitimate:
/// - `UNAVAILABLE`: the backend died under the call, refused the connection, or was restarting for
///   the whole deadline; the caller retries when the status is running again.
/// - `DEADLINE_EXCEEDED`: the backend was frozen (SIGSTOP) and did not answer within the deadline.
///
/// Everything else is a bug under this chaos: `NOT_RUNNING` (nobody stopped it), `SIDECAR_FAILED`
/// (the restart budget is far above what chaos uses), `CANCELLED`/`UNKNOWN`/`INTERNAL` (a transport
/// failure that leaked through untyped), `UNAUTHENTICATED` (a token mix-up between incarnations).
const LEGITIMATE: [&str; 2] = ["UNAVAILABLE", "DEADLINE_EXCEEDED"];

fn soak_budget() -> Duration {
    let secs = std::env::var("ANYSYNC_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs.max(1))
}

/// `kill(2)` that tolerates a pid which is already gone (the supervisor may have replaced it itself).
fn send(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) on a pid this test observed as the running sidecar.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

#[derive(Default)]
struct CallerReport {
    calls: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// Illegitimate outcomes, with details: a wrong echo, an unexpected code, a call past its deadline.
    violations: Vec<String>,
    slowest: Duration,
}

async fn caller(
    id: usize,
    supervisor: Arc<Supervisor>,
    until: Instant,
    stop: Arc<AtomicBool>,
) -> CallerReport {
    let mut report = CallerReport::default();
    let mut n = 0u64;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        n += 1;
        let message = format!("caller {id} call {n} nonce {:016x}", fastrand::u64(..));
        let started = Instant::now();
        let outcome = supervisor.ping(message.clone()).await;
        let took = started.elapsed();
        report.calls += 1;
        report.slowest = report.slowest.max(took);
        if took > CALL_TIMEOUT + DEADLINE_SLACK {
            report.violations.push(format!(
                "{message:?} took {took:?}, past its {CALL_TIMEOUT:?} deadline: {outcome:?}"
            ));
        }
        match outcome {
            Ok(answer) if answer.message == message => report.ok += 1,
            Ok(answer) => report.violations.push(format!(
                "{message:?} was answered with another call's echo {:?}",
                answer.message
            )),
            Err(error) => {
                let code = error.code();
                *report.errors.entry(code.to_owned()).or_default() += 1;
                if !LEGITIMATE.contains(&code) {
                    report
                        .violations
                        .push(format!("{message:?} failed with {code}: {error}"));
                }
            }
        }
    }
    report
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Chaos {
    Kill,
    Stop,
    /// `Supervisor::restart()`, as the app (or its front end) asks for it.
    Restart,
}

/// Kills, freezes or restarts the running sidecar at random moments until `until`; returns each
/// action with the time from it until a new sidecar was running, every pid it hit, and what went
/// wrong with a `restart()` (an error, a late answer, or an answer that is not a new running backend).
async fn chaos(
    supervisor: Arc<Supervisor>,
    until: Instant,
) -> (Vec<(Chaos, Duration)>, Vec<u32>, Vec<String>) {
    let mut recoveries = Vec::new();
    let mut victims = Vec::new();
    let mut restart_failures = Vec::new();
    while Instant::now() < until {
        let pid = running_pid(&supervisor).await;
        // Pacing, not synchronisation: sometimes at once (a crash right after a restart exercises the
        // backoff), mostly after a while of normal traffic.
        let pause = if fastrand::u8(..10) == 0 {
            0
        } else {
            fastrand::u64(100..1_500)
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if Instant::now() >= until {
            break;
        }
        // The first action is always a restart(), so that every soak, however short, has one.
        let action = match fastrand::u8(..10) {
            _ if recoveries.is_empty() => Chaos::Restart,
            0..=4 => Chaos::Kill,
            5..=6 => Chaos::Stop,
            _ => Chaos::Restart,
        };
        let sig = match action {
            Chaos::Kill => libc::SIGKILL,
            Chaos::Stop => libc::SIGSTOP,
            Chaos::Restart => {
                let asked = Instant::now();
                let bound = supervisor.restart_bound();
                let outcome = supervisor.restart().await;
                let took = asked.elapsed();
                victims.push(pid);
                match outcome {
                    Ok(status) if status.state == State::Running && status.pid != Some(pid) => {}
                    Ok(status) => restart_failures.push(format!(
                        "restart() of pid {pid} answered {status:?}, not a new running backend"
                    )),
                    Err(error) => restart_failures.push(format!(
                        "restart() of pid {pid} failed with {}: {error}",
                        error.code()
                    )),
                }
                if took > bound + DEADLINE_SLACK {
                    restart_failures.push(format!(
                        "restart() of pid {pid} took {took:?}, past its {bound:?} bound"
                    ));
                }
                recoveries.push((action, took));
                continue;
            }
        };
        let signalled = Instant::now();
        if !send(pid, sig) {
            continue; // already replaced by the supervisor itself
        }
        victims.push(pid);
        eventually(
            "a replacement backend after chaos",
            Duration::from_secs(15),
            || {
                let status = supervisor.status();
                (status.state == State::Running && status.pid != Some(pid)).then_some(())
            },
        )
        .await;
        recoveries.push((action, signalled.elapsed()));
    }
    (recoveries, victims, restart_failures)
}

fn summary(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "none".into();
    }
    samples.sort();
    format!(
        "n={} min {:?} median {:?} max {:?}",
        samples.len(),
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_under_chaos_get_their_own_answer_or_a_typed_error() {
    let _serial = SERIAL.lock().await;
    let budget = soak_budget();
    let mut config = fast_config(&real_sidecar());
    config.call_timeout_ms = Some(CALL_TIMEOUT.as_millis() as u64);
    config.max_restarts = Some(10_000);
    config.restart_window_ms = Some(60_000);
    config.backoff_initial_ms = Some(20);
    config.backoff_max_ms = Some(200);
    // A frozen backend is found after two missed probes (~0.3 s each) and killed.
    config.health_check_interval_ms = Some(100);
    config.health_check_timeout_ms = Some(200);
    config.unhealthy_threshold = Some(2);
    let (supervisor, _) = start(resolve(config));
    let supervisor = Arc::new(supervisor);
    running_pid(&supervisor).await;

    let started = Instant::now();
    let until = started + budget;
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|id| tokio::spawn(caller(id, supervisor.clone(), until, stop.clone())))
        .collect();
    let (recoveries, victims, restart_failures) = chaos(supervisor.clone(), until).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = CallerReport::default();
    for handle in callers {
        // A caller that never returns would hang here: bound it well past any call's deadline.
        let report = tokio::time::timeout(CALL_TIMEOUT * 3, handle)
            .await
            .expect("a caller hung past every deadline")
            .expect("caller task");
        total.calls += report.calls;
        total.ok += report.ok;
        total.slowest = total.slowest.max(report.slowest);
        for (code, n) in report.errors {
            *total.errors.entry(code).or_default() += n;
        }
        total.violations.extend(report.violations);
    }

    let status = state_reached(&supervisor, State::Running, Duration::from_secs(15)).await;
    let final_echo = supervisor
        .ping("after the chaos".into())
        .await
        .expect("the backend answers after the chaos");
    assert_eq!(final_echo.message, "after the chaos");

    let by_kind = |kind| {
        let mut samples: Vec<Duration> = recoveries
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        summary(&mut samples)
    };
    let mut all: Vec<Duration> = recoveries.iter().map(|(_, d)| *d).collect();
    println!("soak budget {budget:?}, {CALLERS} callers, call timeout {CALL_TIMEOUT:?}");
    println!(
        "calls {} ok {} errors {:?} slowest call {:?}",
        total.calls, total.ok, total.errors, total.slowest
    );
    println!(
        "chaos actions {} (SIGKILL {}, SIGSTOP {}, restart() {}), supervisor restarts {}",
        recoveries.len(),
        recoveries.iter().filter(|(k, _)| *k == Chaos::Kill).count(),
        recoveries.iter().filter(|(k, _)| *k == Chaos::Stop).count(),
        recoveries
            .iter()
            .filter(|(k, _)| *k == Chaos::Restart)
            .count(),
        status.restarts
    );
    println!(
        "recovery (signal -> new backend running): all {}",
        summary(&mut all)
    );
    println!("  after SIGKILL: {}", by_kind(Chaos::Kill));
    println!("  after SIGSTOP: {}", by_kind(Chaos::Stop));
    println!("  restart() calls: {}", by_kind(Chaos::Restart));

    assert!(
        total.violations.is_empty(),
        "{} illegitimate outcome(s), first ones:\n{}",
        total.violations.len(),
        total
            .violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        restart_failures.is_empty(),
        "restart() under chaos:\n{}",
        restart_failures.join("\n")
    );
    assert_eq!(
        status.state,
        State::Running,
        "chaos must not end in Failed: {status:?}"
    );
    assert!(!recoveries.is_empty(), "the chaos loop acted at least once");
    assert!(
        recoveries.iter().any(|(k, _)| *k == Chaos::Restart),
        "restart() was part of the chaos"
    );
    assert!(
        status.restarts as usize >= recoveries.len(),
        "every chaos action caused a restart: {} restarts for {} actions",
        status.restarts,
        recoveries.len()
    );
    assert!(total.ok > 0, "some calls succeeded between the crashes");

    supervisor.shutdown().await;
    // Killed, frozen and restarted backends alike are gone, reaped and not left as zombies: the
    // supervisor kills and reaps a frozen one, and stops and reaps a restarted one.
    for pid in victims {
        assert!(
            reaped(pid),
            "chaos victim pid {pid} is not gone: {:?}",
            proc_state(pid)
        );
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_fds_and_threads_stay_flat_across_100_restarts() {
    const CYCLES: usize = 100;
    const FD_SLACK: usize = 4;
    const THREAD_SLACK: usize = 2;
    let _serial = SERIAL.lock().await;
    let mut config = fast_config(&real_sidecar());
    config.max_restarts = Some(10_000);
    // Every restart at once: the test is about what each incarnation leaves behind, not backoff.
    config.backoff_initial_ms = Some(0);
    config.backoff_max_ms = Some(0);
    let (supervisor, _) = start(resolve(config));

    // Warm up: the spawner thread, the runtime's workers and the first connection exist before the
    // baseline is taken.
    let mut pid = running_pid(&supervisor).await;
    for _ in 0..3 {
        pid = replaced_after(&supervisor, pid, libc::SIGKILL)
            .await
            .pid
            .expect("pid");
    }
    supervisor.ping("warm".into()).await.expect("ping");
    let (fds_before, threads_before) = (open_fds(), threads());

    let started = Instant::now();
    for _ in 0..CYCLES {
        let status = replaced_after(&supervisor, pid, libc::SIGKILL).await;
        pid = status.pid.expect("pid");
    }
    let elapsed = started.elapsed();
    supervisor
        .ping("after 100 restarts".into())
        .await
        .expect("ping");

    // Closing a dead connection's socket can trail the restart by a moment: poll, with a deadline.
    let settled = Instant::now() + Duration::from_secs(5);
    let (fds_after, threads_after) = loop {
        let now = (open_fds(), threads());
        if (now.0 <= fds_before + FD_SLACK && now.1 <= threads_before + THREAD_SLACK)
            || Instant::now() >= settled
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "{CYCLES} SIGKILL -> replaced cycles in {elapsed:?} ({:?} each); fds {fds_before} -> {fds_after}, threads {threads_before} -> {threads_after}",
        elapsed / CYCLES as u32
    );
    assert!(
        fds_after <= fds_before + FD_SLACK,
        "file descriptors grew from {fds_before} to {fds_after} over {CYCLES} restarts"
    );
    assert!(
        threads_after <= threads_before + THREAD_SLACK,
        "threads grew from {threads_before} to {threads_after} over {CYCLES} restarts"
    );
    assert_eq!(supervisor.status().restarts as usize, CYCLES + 3);
    supervisor.shutdown().await;
}
