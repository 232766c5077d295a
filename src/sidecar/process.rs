//! Starting the sidecar process so that it can never outlive the app.
//!
//! Three guards, because no single one covers every way an app dies:
//! - the stdin lifeline (the sidecar exits on EOF) works on every OS and even after `kill -9` of the
//!   app, because the kernel closes the pipe;
//! - on Linux, `PR_SET_PDEATHSIG` sends the sidecar SIGTERM when its parent dies, so it stops
//!   gracefully (within its shutdown grace) even if it does not watch stdin; SIGTERM, not SIGKILL,
//!   so that an app dying without its exit hook does not hard-kill a backend mid-write;
//! - on Windows, a job object with kill-on-close kills it when the app's last handle goes away,
//!   which the kernel closes however the app ends (`TerminateProcess` and crashes too). The child is
//!   created suspended and joins the job before its first instruction, so not even a sidecar that
//!   starts children of its own at once can leave one outside the job; and it is created with
//!   `CREATE_NO_WINDOW`, so a console-subsystem sidecar gets no console window (the build helper
//!   links the sidecar as a GUI-subsystem program anyway, which never gets one).
//!
//! `kill_on_drop` covers the in-process case of a dropped handle.

use std::io;

use tokio::process::{Child, Command};

/// Spawns `command` with the platform's orphan guards applied.
pub(crate) async fn spawn_guarded(command: Command) -> io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        linux::spawn_from_lifeline_thread(command).await
    }
    #[cfg(windows)]
    {
        windows::spawn_in_kill_on_close_job(command)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let mut command = command;
        command.kill_on_drop(true).spawn()
    }
}

/// Checks, before spawning, what the operating system would report confusingly or not at all: an
/// executable for another architecture is run by `/bin/sh` as a script when `execvp` gets ENOEXEC,
/// which would surface as a baffling "not found" from the shell instead of a clear error. Anything
/// but a regular file is refused before it is opened: opening a FIFO would block the start (and
/// the runtime thread it runs on) without end.
pub(crate) fn preflight(path: &std::path::Path) -> io::Result<()> {
    // `metadata` follows symlinks and never blocks on what it describes.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    #[cfg(target_os = "linux")]
    {
        use std::io::Read as _;
        let mut header = [0u8; 20];
        let mut file = std::fs::File::open(path)?;
        if file.read_exact(&mut header).is_ok() && header.starts_with(b"\x7fELF") {
            let machine = match header[5] {
                2 => u16::from_be_bytes([header[18], header[19]]),
                _ => u16::from_le_bytes([header[18], header[19]]),
            };
            if let Some(expected) = elf_machine() {
                if machine != expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "it is an ELF executable for machine type {machine}, but this is {} (machine type {expected})",
                            std::env::consts::ARCH
                        ),
                    ));
                }
            }
        }
    }
    let _ = path;
    Ok(())
}

/// The ELF `e_machine` of the architecture this crate was compiled for.
#[cfg(target_os = "linux")]
fn elf_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86" => Some(3),
        "arm" => Some(40),
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        "riscv64" => Some(243),
        _ => None,
    }
}

/// Whether our child `pid` has not exited yet, without reaping it (tokio still does). A process that
/// died is a zombie until it is reaped, and its port is free from the moment it died.
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) fn child_running(pid: u32) -> bool {
    let pid: libc::id_t = pid;
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with WNOHANG | WNOWAIT neither blocks nor reaps.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // 0 with no pid filled in: still running. An error (ECHILD: already reaped) or a filled-in
    // pid (it exited): dead.
    // SAFETY: si_pid is valid to read after a successful waitid.
    rc == 0 && unsafe { info.si_pid() } == 0
}

/// Whether process `pid` has not exited yet. Our child's id is not reused while tokio holds its
/// handle, and an exited process whose handle is held is signalled.
#[cfg(windows)]
pub(crate) fn child_running(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE,
    };
    // SAFETY: a handle to a process by id, closed below; null when there is no such process.
    let process = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
    if process.is_null() {
        return false;
    }
    // SAFETY: a valid process handle opened with SYNCHRONIZE; it is closed once.
    unsafe {
        let running = WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
        CloseHandle(process);
        running
    }
}

/// Elsewhere only the supervisor's own view of the child counts.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub(crate) fn child_running(_pid: u32) -> bool {
    true
}

/// Asks the process to stop gracefully. On Windows there is no SIGTERM: closing stdin is the request.
pub(crate) fn request_graceful_stop(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet; it cannot hit another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::unix::process::CommandExt as _;
    use std::sync::{mpsc, OnceLock};

    use tokio::process::{Child, Command};
    use tokio::sync::oneshot;

    struct SpawnRequest {
        command: Command,
        runtime: tokio::runtime::Handle,
        reply: oneshot::Sender<io::Result<Child>>,
    }

    /// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. Tokio
    /// retires idle worker threads, which would kill a healthy sidecar; so every sidecar is forked from
    /// this one thread, which lives as long as the process.
    fn lifeline_thread() -> io::Result<&'static mpsc::Sender<SpawnRequest>> {
        static SENDER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
        if let Some(sender) = SENDER.get() {
            return Ok(sender);
        }
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("anysync-spawner".into())
            .spawn(move || {
                for SpawnRequest {
                    mut command,
                    runtime,
                    reply,
                } in requests
                {
                    // The child registers with the caller's runtime for exit notification.
                    let _entered = runtime.enter();
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(SENDER.get_or_init(|| sender))
    }

    /// What the sidecar gets when the app dies: a request to stop gracefully.
    const PARENT_DEATH_SIGNAL: libc::c_int = libc::SIGTERM;

    pub(super) async fn spawn_from_lifeline_thread(mut command: Command) -> io::Result<Child> {
        // SAFETY: getpid is async-signal-safe and has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions.
        unsafe {
            command.as_std_mut().pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody would send the signal.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        command.kill_on_drop(true);
        let (reply, answer) = oneshot::channel();
        let request = SpawnRequest {
            command,
            runtime: tokio::runtime::Handle::current(),
            reply,
        };
        lifeline_thread()?
            .send(request)
            .map_err(|_| io::Error::other("the anysync spawner thread is gone"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the anysync spawner thread dropped the request"))?
    }
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::os::windows::io::{AsRawHandle as _, FromRawHandle as _, OwnedHandle};
    use std::sync::OnceLock;

    use tokio::process::{Child, Command};
    use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
    };
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
        SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    };
    use windows_sys::Win32::System::Threading::{
        OpenThread, ResumeThread, CREATE_NO_WINDOW, CREATE_SUSPENDED, THREAD_SUSPEND_RESUME,
    };

    /// How the sidecar is created: without a console window, and not running until it is in the job.
    pub(super) const CREATION_FLAGS: u32 = CREATE_NO_WINDOW | CREATE_SUSPENDED;

    /// Takes ownership of what a Win32 call returned, or the calling thread's last error when it
    /// returned none.
    fn owned(handle: HANDLE) -> io::Result<OwnedHandle> {
        if handle.is_null() || handle == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the handle was just returned to us by a successful Win32 call and nothing else
        // owns it.
        Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
    }

    /// The one job every sidecar of this app joins. Its handle is never closed by the app (it is not
    /// inheritable, so no child holds it either): the kernel closes it when the app's process ends,
    /// however it ends, and kill-on-close then ends every process in the job.
    pub(super) fn kill_on_close_job() -> io::Result<HANDLE> {
        static JOB: OnceLock<OwnedHandle> = OnceLock::new();
        if let Some(job) = JOB.get() {
            return Ok(job.as_raw_handle());
        }
        // SAFETY: null attributes (not inheritable) and a null name (an anonymous job).
        let job = owned(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) })?;
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid: no limits set.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let size = u32::try_from(std::mem::size_of_val(&limits)).map_err(io::Error::other)?;
        // SAFETY: the pointer and size describe `limits`, which outlives the call.
        let set = unsafe {
            SetInformationJobObject(
                job.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                std::ptr::addr_of!(limits).cast(),
                size,
            )
        };
        if set == 0 {
            return Err(io::Error::last_os_error());
        }
        // Two first spawns racing: the loser's job is dropped (closed) before any child joined it.
        Ok(JOB.get_or_init(|| job).as_raw_handle())
    }

    /// Spawns `command` suspended, puts it in the kill-on-close job, then lets it run. A child that
    /// cannot join the job is killed and never runs a single instruction.
    pub(super) fn spawn_in_kill_on_close_job(mut command: Command) -> io::Result<Child> {
        let job = kill_on_close_job()?;
        command.kill_on_drop(true).creation_flags(CREATION_FLAGS);
        let mut child = command.spawn()?;
        match join_and_resume(&child, job) {
            Ok(()) => Ok(child),
            Err(err) => {
                // It is still suspended: TerminateProcess ends it before it ran.
                let _ = child.start_kill();
                Err(err)
            }
        }
    }

    fn join_and_resume(child: &Child, job: HANDLE) -> io::Result<()> {
        let process = child
            .raw_handle()
            .ok_or_else(|| io::Error::other("the sidecar was reaped before it joined the job"))?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the sidecar has no process id"))?;
        // SAFETY: the job handle lives in a static and is never closed; the process handle is the
        // child's own, valid until the child is dropped, which it is not during this call.
        if unsafe { AssignProcessToJobObject(job, process.cast()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        resume_main_thread(pid)
    }

    /// Resumes the one thread of a process created suspended. The standard library closes the main
    /// thread's handle that `CreateProcessW` returned, so the thread is found by its owner's id.
    fn resume_main_thread(pid: u32) -> io::Result<()> {
        // SAFETY: a snapshot of every thread in the system; the handle is checked and owned.
        let snapshot = owned(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) })?;
        let mut entry = THREADENTRY32 {
            dwSize: u32::try_from(std::mem::size_of::<THREADENTRY32>())
                .map_err(io::Error::other)?,
            ..THREADENTRY32::default()
        };
        let mut resumed = 0usize;
        // SAFETY: `entry` is a valid THREADENTRY32 with its size set, as both calls require.
        let mut more = unsafe { Thread32First(snapshot.as_raw_handle(), &mut entry) } != 0;
        while more {
            if entry.th32OwnerProcessID == pid {
                // SAFETY: a thread id from the snapshot; the handle is checked and owned.
                let thread =
                    owned(unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) })?;
                // SAFETY: a thread handle opened with THREAD_SUSPEND_RESUME.
                if unsafe { ResumeThread(thread.as_raw_handle()) } == u32::MAX {
                    return Err(io::Error::last_os_error());
                }
                resumed += 1;
            }
            // SAFETY: as for Thread32First.
            more = unsafe { Thread32Next(snapshot.as_raw_handle(), &mut entry) } != 0;
        }
        if resumed == 0 {
            return Err(io::Error::other(
                "the suspended sidecar's main thread was not found",
            ));
        }
        Ok(())
    }
}

/// The orphan guard on its own, without the stdin lifeline: the child is a program that never reads
/// stdin, its host (this test binary, run again) is killed outright, and the child must end anyway:
/// by `PR_SET_PDEATHSIG` on Linux, by the kill-on-close job on Windows. macOS has neither guard;
/// there the stdin lifeline alone stops the sidecar (tests/lifecycle.rs).
#[cfg(all(test, any(target_os = "linux", windows)))]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// Set for the host run of the test binary; the host test does nothing without it.
    const HOST_ENV: &str = "ANYSYNC_ORPHAN_GUARD_HOST";
    const HOST_TEST: &str = "sidecar::process::tests::orphan_guard_host";

    /// A long-running program that ignores stdin, so only the platform's guard can end it early.
    fn stdin_ignoring_child() -> tokio::process::Command {
        #[cfg(windows)]
        let mut command = {
            let mut command = tokio::process::Command::new("ping");
            command.args(["-n", "120", "127.0.0.1"]);
            command
        };
        #[cfg(not(windows))]
        let mut command = {
            let mut command = tokio::process::Command::new("sleep");
            command.arg("120");
            command
        };
        // Nothing of the host's: our pipe from the host must close when the host dies.
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    #[test]
    #[ignore = "the host of host_death_ends_a_child_that_ignores_stdin, which runs it"]
    fn orphan_guard_host() {
        if std::env::var_os(HOST_ENV).is_none() {
            return;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let child = runtime
            .block_on(super::spawn_guarded(stdin_ignoring_child()))
            .expect("spawn the guarded child");
        println!(
            "child pid {}",
            child.id().expect("a running child has a pid")
        );
        // Until it is killed: the test keeps our stdin open and never writes to it.
        let _ = std::io::stdin().read_line(&mut String::new());
        drop(child);
    }

    #[test]
    fn host_death_ends_a_child_that_ignores_stdin() {
        let mut host = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([HOST_TEST, "--exact", "--ignored", "--nocapture"])
            .env(HOST_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the host");
        let stdout = host.stdout.take().expect("piped stdout");
        let pid = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("child pid ")?.parse::<u32>().ok())
            .expect("the host reports its child's pid");
        assert!(alive(pid), "the child {pid} runs while its host does");
        host.kill().expect("kill the host");
        host.wait().expect("reap the host");

        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            if Instant::now() > deadline {
                terminate(pid);
                panic!("the child {pid} still ran 10 s after its host was killed");
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Whether `pid` runs; a zombie (already dead, its new parent has not reaped it yet) does not.
    #[cfg(target_os = "linux")]
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // The state follows the parenthesised command name, which may contain anything.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        })
    }

    #[cfg(target_os = "linux")]
    fn terminate(pid: u32) {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) of the leaked child, so it does not outlive a failed test.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// On Windows any process can be asked, not only our children.
    #[cfg(windows)]
    fn alive(pid: u32) -> bool {
        super::child_running(pid)
    }

    #[cfg(windows)]
    fn terminate(pid: u32) {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Threading::{
            OpenProcess, TerminateProcess, PROCESS_TERMINATE,
        };
        // SAFETY: as in `child_running`; the leaked child is ended so it does not outlive a failed test.
        unsafe {
            let process = OpenProcess(PROCESS_TERMINATE, 0, pid);
            if !process.is_null() {
                TerminateProcess(process, 1);
                CloseHandle(process);
            }
        }
    }

    /// On Windows the child really runs once spawned (it was created suspended), and it is in the
    /// job whose closing kills it.
    #[cfg(windows)]
    #[tokio::test]
    async fn the_child_runs_inside_the_kill_on_close_job() {
        use tokio::io::AsyncBufReadExt as _;
        use windows_sys::Win32::System::JobObjects::IsProcessInJob;

        let mut command = tokio::process::Command::new("ping");
        command
            .args(["-n", "120", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = super::spawn_guarded(command).await.expect("spawn");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::BufReader::new(stdout).read_line(&mut first),
        )
        .await
        .expect("a suspended child would never print: it was not resumed")
        .expect("read");
        let job = super::windows::kill_on_close_job().expect("the job");
        let process = child.raw_handle().expect("not reaped");
        let mut in_job = 0;
        // SAFETY: both handles are valid for the duration of the call.
        let ok = unsafe { IsProcessInJob(process.cast(), job, &mut in_job) };
        assert!(
            ok != 0 && in_job != 0,
            "the child is in the kill-on-close job"
        );
        child.kill().await.expect("kill");
    }
}
