//! Starting the sidecar process so that it can never outlive the app.
//!
//! Three guards, because no single one covers every way an app dies:
//! - the stdin lifeline (the sidecar exits on EOF) works on every OS and even after `kill -9` of the
//!   app, because the kernel closes the pipe;
//! - on Linux, `PR_SET_PDEATHSIG` sends the sidecar SIGTERM when its parent dies, so it stops
//!   gracefully (within its shutdown grace) even if it does not watch stdin; SIGTERM, not SIGKILL,
//!   so that an app dying without its exit hook does not hard-kill a backend mid-write;
//! - on Windows, a job object with kill-on-close kills it when the app's last handle goes away.
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
        let mut command = command;
        let child = command.kill_on_drop(true).spawn()?;
        windows::assign_to_kill_on_close_job(&child)?;
        Ok(child)
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
    use std::sync::OnceLock;

    use tokio::process::Child;
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
        SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    };

    /// The job handle as an integer so it can live in a static; it is never closed, so the job dies
    /// with the app and takes every sidecar with it.
    fn kill_on_close_job() -> io::Result<isize> {
        static JOB: OnceLock<isize> = OnceLock::new();
        if let Some(job) = JOB.get() {
            return Ok(*job);
        }
        // SAFETY: plain Win32 calls with valid pointers; the handle is checked before use.
        unsafe {
            let job: HANDLE = CreateJobObjectW(std::ptr::null(), std::ptr::null());
            if job.is_null() {
                return Err(io::Error::last_os_error());
            }
            let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            let ok = SetInformationJobObject(
                job,
                JobObjectExtendedLimitInformation,
                std::ptr::addr_of!(limits).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            );
            if ok == 0 {
                let err = io::Error::last_os_error();
                CloseHandle(job);
                return Err(err);
            }
            Ok(*JOB.get_or_init(|| job as isize))
        }
    }

    pub(super) fn assign_to_kill_on_close_job(child: &Child) -> io::Result<()> {
        let job = kill_on_close_job()? as HANDLE;
        let process = child
            .raw_handle()
            .ok_or_else(|| io::Error::other("sidecar exited before it joined the job"))?;
        // SAFETY: both handles are valid: the job is never closed and the child is not yet reaped.
        if unsafe { AssignProcessToJobObject(job, process as HANDLE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
