//! The supervisor against the real Go sidecar: start, calls, crashes, hangs, shutdown, orphans.
#![cfg(unix)]

mod common;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tauri_plugin_anysync::{Config, ServingStatus, State};

const START: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_handshakes_and_answers_ping_and_health() {
    let spawned = Instant::now();
    let (supervisor, recorder) = start(resolve(fast_config(&real_sidecar())));
    let status = state_reached(&supervisor, State::Running, START).await;
    println!("spawn -> Running: {:?}", spawned.elapsed());

    let pid = status.pid.expect("pid while running");
    assert!(alive(pid));
    assert!(
        status
            .addr
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{status:?}"
    );
    assert_eq!(status.version.as_deref(), Some("0.1.0"));
    assert_eq!(status.restarts, 0);

    let pong = supervisor
        .ping("héllo, backend".into())
        .await
        .expect("ping");
    assert_eq!(pong.message, "héllo, backend");
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64;
    assert!(
        (now_us - pong.handled_at_unix_micros).abs() < 10_000_000,
        "handled_at is now-ish"
    );

    let health = supervisor.health().await.expect("health");
    assert_eq!(health.status(), ServingStatus::Serving);
    assert_eq!((health.pid as u32, health.protocol_version), (pid, 1));
    assert_eq!(health.version, "0.1.0");
    assert!(health.uptime_ms >= 0);

    // The backend's start-up record reached the log ring and the sink, tagged with its pid.
    eventually("a backend log record", START, || {
        supervisor
            .logs()
            .iter()
            .any(|r| r.pid == Some(pid))
            .then_some(())
    })
    .await;
    assert!(!recorder.logs.lock().expect("lock").is_empty());
    assert_eq!(recorder.states(), [State::Starting, State::Running]);

    let mut samples = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        supervisor.ping("p".into()).await.expect("ping");
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "Rust->Go ping p50 {:?} p99 {:?} (500 sequential calls)",
        samples[250], samples[495]
    );

    let exit = supervisor
        .shutdown()
        .await
        .expect("a running backend exits");
    assert_eq!(
        (
            exit.code(),
            std::os::unix::process::ExitStatusExt::signal(&exit)
        ),
        (Some(0), None),
        "a normal stop is the backend's clean exit, not a kill: {exit:?}"
    );
    assert_eq!(supervisor.status().state, State::Stopped);
    assert!(
        reaped(pid),
        "sidecar pid {pid} must be gone (reaped, not a zombie) after shutdown: {:?}",
        proc_state(pid)
    );
    assert_eq!(recorder.states().last(), Some(&State::Stopped));
    let err = supervisor.ping("after".into()).await.expect_err("stopped");
    assert_eq!(err.code(), "NOT_RUNNING");
    supervisor.shutdown().await; // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_calls_all_get_their_own_answer() {
    let (supervisor, _) = start(resolve(fast_config(&real_sidecar())));
    let supervisor = std::sync::Arc::new(supervisor);
    let calls: Vec<_> = (0..500)
        .map(|i| {
            let supervisor = supervisor.clone();
            tokio::spawn(async move { (i, supervisor.ping(format!("call {i}")).await) })
        })
        .collect();
    for call in calls {
        let (i, answer) = call.await.expect("task");
        assert_eq!(answer.expect("answered").message, format!("call {i}"));
    }
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_sidecar_restarts_it_with_a_new_pid() {
    let (supervisor, recorder) = start(resolve(fast_config(&real_sidecar())));
    let first = running_pid(&supervisor).await;
    let killed = Instant::now();
    let second = replaced_after(&supervisor, first, libc::SIGKILL).await;
    println!("SIGKILL -> Running again: {:?}", killed.elapsed());

    assert_eq!(second.restarts, 1);
    let last_error = second.last_error.expect("the crash is recorded");
    assert_eq!(last_error.code, "SIDECAR_EXITED");
    assert!(
        last_error.message.contains("signal 9") && last_error.message.contains("while running"),
        "{}",
        last_error.message
    );
    assert_eq!(
        recorder.states(),
        [
            State::Starting,
            State::Running,
            State::Restarting,
            State::Running
        ]
    );
    assert_eq!(
        supervisor
            .ping("after the crash".into())
            .await
            .expect("ping")
            .message,
        "after the crash"
    );
    assert!(
        reaped(first),
        "the crashed backend was reaped: {:?}",
        proc_state(first)
    );
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_a_restart_wait_for_the_new_backend() {
    let mut config = fast_config(&real_sidecar());
    config.backoff_initial_ms = Some(300);
    config.backoff_max_ms = Some(1_000);
    let (supervisor, _) = start(resolve(config));
    // Two crashes in a row: the second restart waits for the backoff, so calls meet Restarting.
    crash_twice(&supervisor).await;
    let answer = supervisor
        .ping("waited".into())
        .await
        .expect("waits for Running");
    assert_eq!(answer.message, "waited");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_outlasts_the_call_deadline_fails_unavailable() {
    let mut config = fast_config(&real_sidecar());
    config.backoff_initial_ms = Some(3_000);
    config.backoff_max_ms = Some(3_000);
    config.call_timeout_ms = Some(200);
    let (supervisor, _) = start(resolve(config));
    crash_twice(&supervisor).await;
    let started = Instant::now();
    let err = supervisor
        .ping("too late".into())
        .await
        .expect_err("deadline passes during backoff");
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    assert!(err.to_string().contains("restarting"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failed at its deadline, not later"
    );
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sidecar_is_found_unhealthy_and_replaced() {
    let (supervisor, recorder) = start(resolve(fast_config(&real_sidecar())));
    let hung = running_pid(&supervisor).await;
    let replaced = replaced_after(&supervisor, hung, libc::SIGSTOP).await;
    let states = recorder.states();
    assert_eq!(
        &states[states.len() - 3..],
        [State::Unhealthy, State::Restarting, State::Running],
        "{states:?}"
    );
    assert_eq!(
        replaced.last_error.expect("recorded").code,
        "DEADLINE_EXCEEDED"
    );
    assert!(
        reaped(hung),
        "the hung process was killed and reaped: {:?}",
        proc_state(hung)
    );
    supervisor.ping("fresh".into()).await.expect("ping");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_a_running_backend() {
    let (supervisor, _) = start(resolve(fast_config(&real_sidecar())));
    let first = running_pid(&supervisor).await;
    let status = supervisor.restart().await.expect("restarted");
    assert_eq!(status.state, State::Running);
    assert_ne!(status.pid, Some(first));
    assert!(
        reaped(first),
        "the old backend was stopped and reaped: {:?}",
        proc_state(first)
    );
    supervisor.ping("again".into()).await.expect("ping");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_in_neither_argv_nor_environment() {
    let mut config = fast_config(&real_sidecar());
    config.args = Some(vec!["--log-level".into(), "debug".into()]);
    config.env = Some([("ANYSYNC_EXAMPLE".to_owned(), "visible".to_owned())].into());
    let config = resolve(config);
    let token = config.token().expose().to_owned();
    let (supervisor, _) = start(config);
    let pid = state_reached(&supervisor, State::Running, START)
        .await
        .pid
        .expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let has = |haystack: &[u8]| haystack.windows(token.len()).any(|w| w == token.as_bytes());
    assert!(
        String::from_utf8_lossy(&cmdline).contains("--log-level"),
        "read the right process"
    );
    assert!(
        String::from_utf8_lossy(&environ).contains("ANYSYNC_EXAMPLE=visible"),
        "read the right process"
    );
    assert!(!has(&cmdline), "token leaked into argv");
    assert!(!has(&environ), "token leaked into the environment");
    supervisor.ping("x".into()).await.expect("ping");
    assert!(
        supervisor
            .logs()
            .iter()
            .all(|r| !serde_json::to_string(r).expect("json").contains(&token)),
        "token leaked into a log record"
    );
    assert_eq!(
        supervisor.token().map(|t| t.expose().to_owned()),
        Some(token.clone()),
        "the first incarnation has the configuration's token"
    );
    // Every incarnation draws its own: the old one is worthless once its backend is gone.
    supervisor.restart().await.expect("restarted");
    let second = supervisor.token().expect("a running backend has a token");
    assert_ne!(second.expose(), token, "a restart draws a fresh token");
    supervisor
        .ping("y".into())
        .await
        .expect("ping with the new token");
    supervisor.shutdown().await;
}

/// Takes `addr` the moment it is free (as a local attacker would after killing the backend) and
/// counts every connection made to it until `stop`. Returns whether it got the port, and the count.
fn squat(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(bool, usize)> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline && !stop.load(Ordering::SeqCst) => {
                    std::thread::yield_now();
                }
                Err(_) => return (false, 0),
            }
        };
        listener.set_nonblocking(true).expect("nonblocking");
        let mut connections = 0;
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok(_) => connections += 1,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        (true, connections)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reaches_the_old_port_after_a_crash() {
    const CALLERS: usize = 8;
    let (supervisor, _) = start(resolve(fast_config(&real_sidecar())));
    let supervisor = Arc::new(supervisor);
    let status = state_reached(&supervisor, State::Running, START).await;
    let pid = status.pid.expect("pid");
    let addr: SocketAddr = status.addr.expect("addr").parse().expect("addr");
    let old_token = supervisor.token().expect("token");

    // Callers keep calling through the crash.
    let stop_calls = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (supervisor, stop, answered) = (
                Arc::clone(&supervisor),
                Arc::clone(&stop_calls),
                Arc::clone(&answered),
            );
            tokio::spawn(async move {
                let mut codes = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match supervisor.ping(format!("caller {i}")).await {
                        Ok(_) => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(error) => codes.push(error.code().to_owned()),
                    }
                }
                codes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stop_squatting = Arc::new(AtomicBool::new(false));
    let squatter = squat(addr, Arc::clone(&stop_squatting));
    signal(pid, libc::SIGKILL);
    let replaced = eventually("a replacement backend", START, || {
        let status = supervisor.status();
        (status.state == State::Running && status.pid != Some(pid)).then_some(status)
    })
    .await;
    assert_ne!(replaced.addr, Some(addr.to_string()));
    let new_token = supervisor.token().expect("token");
    assert_ne!(new_token.expose(), old_token.expose(), "a fresh token");

    // Calls go on, and succeed, on the new incarnation, while the old port is someone else's.
    let before = answered.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_calls.store(true, Ordering::SeqCst);
    let mut codes = Vec::new();
    for caller in callers {
        codes.extend(caller.await.expect("caller"));
    }
    for i in 0..20 {
        supervisor.ping(format!("after {i}")).await.expect("ping");
    }
    stop_squatting.store(true, Ordering::SeqCst);
    let (bound, connections) = squatter.join().expect("squatter");
    assert!(bound, "the test took the freed port {addr}");
    assert_eq!(
        connections, 0,
        "nothing may dial the dead incarnation's port {addr} (calls that failed: {codes:?})"
    );
    assert!(
        answered.load(Ordering::SeqCst) > before + 10,
        "calls succeed on the new incarnation"
    );
    // Only the calls in flight at the kill may fail, and only as UNAVAILABLE.
    assert!(codes.len() <= CALLERS, "{codes:?}");
    assert!(codes.iter().all(|c| c == "UNAVAILABLE"), "{codes:?}");
    supervisor.shutdown().await;
}

/// Not a test on its own: the host process of `killing_the_host_kills_the_sidecar`, re-executed
/// from this test binary. It runs a supervisor, prints the sidecar's pid and waits to be killed.
#[test]
fn host_process_helper() {
    let Some(sidecar) = std::env::var_os("ANYSYNC_HOST_HELPER_SIDECAR") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (supervisor, _) = start(resolve(fast_config(std::path::Path::new(&sidecar))));
        let pid = state_reached(&supervisor, State::Running, START)
            .await
            .pid
            .expect("pid");
        if std::env::var_os("ANYSYNC_HOST_HELPER_KEEP_STDIN").is_some() {
            // A forked copy holds every descriptor of this process, the write end of the
            // sidecar's stdin among them, so the sidecar never sees EOF when this process dies:
            // only PR_SET_PDEATHSIG can stop it then.
            // SAFETY: the child calls only pause(), which is async-signal-safe, until killed.
            let keeper = unsafe { libc::fork() };
            assert!(keeper >= 0, "fork: {}", std::io::Error::last_os_error());
            if keeper == 0 {
                loop {
                    // SAFETY: pause has no memory effects.
                    unsafe { libc::pause() };
                }
            }
            println!("KEEPER_PID {keeper}");
        }
        println!("SIDECAR_PID {pid}");
        std::future::pending::<()>().await;
    });
}

/// Waits for our child `pid` to exit (up to `timeout`) and reaps it; `None` if it did not.
fn reap(pid: u32, timeout: Duration) -> Option<libc::c_int> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid on a pid that is our child (we are its subreaper), non-blocking.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if rc == pid as libc::pid_t {
            return Some(status);
        }
        assert!(
            rc == 0,
            "waitpid({pid}) failed: {}",
            std::io::Error::last_os_error()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// An app that dies without its exit hook (SIGKILL, or a signal it does not handle) still takes
/// its backend with it, and the backend stops gracefully: stdin EOF and PR_SET_PDEATHSIG (SIGTERM)
/// both ask it to, and it exits 0 within its grace. This process becomes a child subreaper, so the
/// orphaned sidecar is reparented to it and its exit status can be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_kills_the_sidecar() {
    become_subreaper();
    for host_signal in [libc::SIGKILL, libc::SIGTERM] {
        let host = HostHelper::spawn(false);
        signal(host.child.id(), host_signal);
        host.orphan_stops_gracefully(&format!("host {host_signal}"))
            .await;
    }
}

/// The parent-death signal on its own: with the stdin lifeline held open by another process (as
/// when the app forked a child that kept its descriptors), killing the app still stops the
/// backend, gracefully, through PR_SET_PDEATHSIG's SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_death_signal_alone_stops_an_orphaned_sidecar() {
    become_subreaper();
    let host = HostHelper::spawn(true);
    let keeper = host.keeper.expect("the helper reports its keeper");
    signal(host.child.id(), libc::SIGKILL);
    host.orphan_stops_gracefully("host SIGKILL, stdin kept open")
        .await;
    signal(keeper, libc::SIGKILL);
    let reaped = tokio::task::spawn_blocking(move || reap(keeper, Duration::from_secs(3)))
        .await
        .expect("reaper");
    assert!(reaped.is_some(), "the stdin keeper {keeper} was reaped");
}

fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER has no memory effects.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// `host_process_helper` running in a process of its own, and what it reported.
struct HostHelper {
    child: std::process::Child,
    sidecar: u32,
    keeper: Option<u32>,
}

impl HostHelper {
    fn spawn(keep_stdin: bool) -> Self {
        let mut command = std::process::Command::new(std::env::current_exe().expect("exe"));
        command
            .args([
                "host_process_helper",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ANYSYNC_HOST_HELPER_SIDECAR", real_sidecar())
            .stdout(std::process::Stdio::piped());
        if keep_stdin {
            command.env("ANYSYNC_HOST_HELPER_KEEP_STDIN", "1");
        }
        let mut child = command.spawn().expect("host helper");
        let stdout = child.stdout.take().expect("stdout");
        let (mut sidecar, mut keeper) = (None, None);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let pid = |prefix: &str| {
                line.split_once(prefix)
                    .map(|(_, p)| p.trim().parse::<u32>().expect("pid"))
            };
            keeper = keeper.or(pid("KEEPER_PID "));
            sidecar = pid("SIDECAR_PID ");
            if sidecar.is_some() {
                break;
            }
        }
        let sidecar = sidecar.expect("the helper reports its sidecar");
        assert!(alive(sidecar));
        Self {
            child,
            sidecar,
            keeper,
        }
    }

    /// After the host was signalled: it exits, and its orphaned sidecar exits 0 within 3 s.
    async fn orphan_stops_gracefully(mut self, what: &str) {
        self.child.wait().expect("reap host");
        let killed = Instant::now();
        let sidecar = self.sidecar;
        let status = tokio::task::spawn_blocking(move || reap(sidecar, Duration::from_secs(3)))
            .await
            .expect("reaper");
        let Some(status) = status else {
            signal(sidecar, libc::SIGKILL);
            if let Some(keeper) = self.keeper {
                signal(keeper, libc::SIGKILL);
            }
            panic!("{what}: the orphaned sidecar {sidecar} still ran 3 s after its host died");
        };
        println!("{what} -> sidecar gone in {:?}", killed.elapsed());
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{what}: the orphan stopped gracefully (exit 0), not killed: wait status {status:#x} (signal {})",
            if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { 0 }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_supervisor_stops_the_sidecar() {
    let (supervisor, _) = start(resolve(Config {
        ..fast_config(&real_sidecar())
    }));
    let pid = state_reached(&supervisor, State::Running, START)
        .await
        .pid
        .expect("pid");
    drop(supervisor);
    eventually(
        "the sidecar to stop and be reaped",
        Duration::from_secs(5),
        || reaped(pid).then_some(()),
    )
    .await;
}
