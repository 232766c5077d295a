//! # tauri-plugin-anysync-build
//!
//! Builds the Go sidecar of `tauri-plugin-anysync` from an app's `build.rs`, before
//! `tauri_build::build()` (which fails when an `externalBin` is missing):
//!
//! ```no_run
//! // build.rs
//! # fn main() {
//! tauri_plugin_anysync_build::build_sidecar();
//! // tauri_build::build();
//! # }
//! ```
//!
//! with `"bundle": { "externalBin": ["binaries/anysync-backend"] }` in the app's tauri.conf.json.
//!
//! It runs `go build -trimpath -buildvcs=false -ldflags "-s -w" ./cmd/server` in the plugin's
//! `go-backend` (published by the plugin's build script as `DEP_TAURI_PLUGIN_ANYSYNC_GO_BACKEND_DIR`)
//! with `CGO_ENABLED=0`, `GOTOOLCHAIN=local`, `GOWORK=off` and `GOOS`/`GOARCH`/`GOARM` mapped from the
//! Rust `TARGET`, and writes `binaries/anysync-backend-<target-triple>[.exe]` beside the app's
//! Cargo.toml. The backend's version is a constant in its `internal/version` package, so no `-X`
//! flag is needed. The script reruns only when a Go source (`*.go`, `go.mod`, `go.sum`, `*.proto`)
//! of the module, or of a module its go.mod `replace`s with a local directory, or `ANYSYNC_SIDECAR`
//! changes.
//!
//! An app with its own Go backend (its own services on the plugin's public `backend` package) points
//! the helper at its module: `Builder::new().go_dir("../backend").package(".").build()`.
//!
//! Without Go, set `ANYSYNC_SIDECAR=/path/to/prebuilt/anysync-backend`: that file is checked and
//! copied instead (it must be built for the same target).

#![warn(missing_docs)]

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The sidecar's base name, as `bundle.externalBin` names it and the plugin looks for it at run time.
pub const SIDECAR_NAME: &str = "anysync-backend";

/// Where the plugin's build script publishes its `go-backend` directory (`links = "tauri-plugin-anysync"`).
pub const GO_BACKEND_DIR_ENV: &str = "DEP_TAURI_PLUGIN_ANYSYNC_GO_BACKEND_DIR";

/// Names a prebuilt sidecar to copy instead of building one with Go.
pub const PREBUILT_ENV: &str = "ANYSYNC_SIDECAR";

/// The Go package of the sidecar's `main`, relative to the Go module.
pub const DEFAULT_PACKAGE: &str = "./cmd/server";

/// Builds the sidecar with the default options; on failure reports why (and the fix) as a cargo
/// error, which fails the build. See [`Builder`] for options.
pub fn build_sidecar() -> PathBuf {
    Builder::new().build()
}

/// Everything that can stop the sidecar build. Each message says what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A variable cargo or the plugin should have set is missing: not running in a build script, or
    /// the app does not depend on `tauri-plugin-anysync` directly.
    MissingEnv {
        /// The variable.
        name: &'static str,
        /// How to get it set.
        hint: &'static str,
    },
    /// The Rust target has no Go sidecar.
    UnsupportedTarget {
        /// The Rust target triple.
        triple: String,
        /// Why.
        reason: &'static str,
    },
    /// The Go backend directory has no `go.mod`.
    NotAGoModule {
        /// The directory.
        dir: PathBuf,
    },
    /// The `go` command could not be started.
    GoNotFound {
        /// The command that was tried.
        go: PathBuf,
        /// The Go version the module asks for (its `go` directive), when known.
        required: Option<String>,
        /// The error from starting it.
        source: io::Error,
    },
    /// `go build` ran and failed.
    GoBuildFailed {
        /// The command line, for repeating it by hand.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `ANYSYNC_SIDECAR` (or [`Builder::prebuilt`]) does not name a usable program.
    BadPrebuilt {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A file operation failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingEnv { name, hint } => write!(f, "{name} is not set: {hint}"),
            Self::UnsupportedTarget { triple, reason } => write!(
                f,
                "cannot build the anysync sidecar for target {triple}: {reason}"
            ),
            Self::NotAGoModule { dir } => write!(
                f,
                "{} has no go.mod, so it is not the anysync Go backend; point Builder::go_dir at \
                 the plugin's go-backend directory",
                dir.display()
            ),
            Self::GoNotFound {
                go,
                required,
                source,
            } => {
                let version = required
                    .as_deref()
                    .map_or_else(String::new, |v| format!(" {v} or newer"));
                write!(
                    f,
                    "the Go toolchain is needed to build the anysync sidecar, but `{}` could not be \
                     run ({source}). Install Go{version} (https://go.dev/dl/) and put it on PATH, or \
                     set {PREBUILT_ENV}=/path/to/prebuilt/{SIDECAR_NAME} to use a sidecar built \
                     elsewhere for this target",
                    go.display()
                )
            }
            Self::GoBuildFailed {
                command,
                status,
                stderr,
            } => write!(
                f,
                "building the anysync sidecar failed ({status}): {command}\n{}\nFix the error above, \
                 or set {PREBUILT_ENV}=/path/to/prebuilt/{SIDECAR_NAME} to use a prebuilt sidecar",
                stderr.trim_end()
            ),
            Self::BadPrebuilt { path, problem } => write!(
                f,
                "{PREBUILT_ENV}={} {problem}; point it at the {SIDECAR_NAME} executable built for \
                 this target, or unset it to build the sidecar with Go",
                path.display()
            ),
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::GoNotFound { source, .. } | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Go build target: what `GOOS`, `GOARCH` and `GOARM` must be for a Rust target triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTarget {
    /// `GOOS`.
    pub goos: &'static str,
    /// `GOARCH`.
    pub goarch: &'static str,
    /// `GOARM`, for 32-bit ARM only.
    pub goarm: Option<&'static str>,
    /// The executable suffix: `.exe` on Windows, empty elsewhere.
    pub exe_suffix: &'static str,
}

impl GoTarget {
    /// Maps a Rust target triple (`x86_64-unknown-linux-gnu`, `aarch64-apple-darwin`, ...) to Go.
    ///
    /// Mobile targets are refused: on Android and iOS the backend is linked in through gomobile,
    /// not run as a sidecar.
    pub fn from_rust_triple(triple: &str) -> Result<Self> {
        let unsupported = |reason| Error::UnsupportedTarget {
            triple: triple.to_owned(),
            reason,
        };
        let mut parts = triple.split('-');
        let arch = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let has = |part: &str| rest.contains(&part);
        let env = rest.last().copied().unwrap_or_default();

        if has("android") || has("ios") || env.starts_with("ios") {
            return Err(unsupported(
                "mobile targets do not run a sidecar (the backend is linked through gomobile there)",
            ));
        }
        let goos = if has("linux") {
            "linux"
        } else if has("windows") {
            "windows"
        } else if has("darwin") {
            "darwin"
        } else if has("freebsd") {
            "freebsd"
        } else if has("netbsd") {
            "netbsd"
        } else if has("openbsd") {
            "openbsd"
        } else if has("dragonfly") {
            "dragonfly"
        } else if has("illumos") {
            "illumos"
        } else if has("solaris") {
            "solaris"
        } else {
            return Err(unsupported("Go has no port for its operating system"));
        };

        let (goarch, goarm) = match arch {
            "x86_64" => ("amd64", None),
            "i386" | "i586" | "i686" => ("386", None),
            "aarch64" | "arm64" => ("arm64", None),
            a if a.starts_with("armv7") || a.starts_with("thumbv7") => ("arm", Some("7")),
            a if a.starts_with("armv6") => ("arm", Some("6")),
            a if a.starts_with("armv5") => ("arm", Some("5")),
            // Plain `arm-*`: ARMv6 with a hard-float ABI, otherwise the conservative ARMv5.
            "arm" if env.ends_with("hf") => ("arm", Some("6")),
            "arm" => ("arm", Some("5")),
            "riscv64gc" | "riscv64" => ("riscv64", None),
            "powerpc64le" => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            "mips64el" => ("mips64le", None),
            "mips64" => ("mips64", None),
            "mipsel" => ("mipsle", None),
            "mips" => ("mips", None),
            _ => return Err(unsupported("Go has no port for its CPU architecture")),
        };
        Ok(Self {
            goos,
            goarch,
            goarm,
            exe_suffix: if goos == "windows" { ".exe" } else { "" },
        })
    }
}

/// Options for building the sidecar. Every option has a default that suits an app depending on
/// `tauri-plugin-anysync` directly.
///
/// ```no_run
/// tauri_plugin_anysync_build::Builder::new()
///     .out_dir("binaries")
///     .build();
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    go_dir: Option<PathBuf>,
    package: Option<String>,
    out_dir: Option<PathBuf>,
    name: Option<String>,
    go: Option<PathBuf>,
    prebuilt: Option<PathBuf>,
    target: Option<String>,
}

impl Builder {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The Go module to build. Default: `$DEP_TAURI_PLUGIN_ANYSYNC_GO_BACKEND_DIR`.
    pub fn go_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.go_dir = Some(dir.into());
        self
    }

    /// The `main` package inside the module. Default: `./cmd/server`.
    pub fn package(mut self, package: impl Into<String>) -> Self {
        self.package = Some(package.into());
        self
    }

    /// The output directory; relative paths are taken from `CARGO_MANIFEST_DIR`.
    /// Default: `binaries`, the directory `bundle.externalBin: ["binaries/anysync-backend"]` names.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The output's base name, before `-<target-triple>`. Default: `anysync-backend`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The `go` command. Default: `go` from `PATH`.
    pub fn go_binary(mut self, go: impl Into<PathBuf>) -> Self {
        self.go = Some(go.into());
        self
    }

    /// Copy this prebuilt sidecar instead of building one. `ANYSYNC_SIDECAR` takes precedence.
    pub fn prebuilt(mut self, path: impl Into<PathBuf>) -> Self {
        self.prebuilt = Some(path.into());
        self
    }

    /// The Rust target triple to build for. Default: cargo's `TARGET`.
    pub fn target(mut self, triple: impl Into<String>) -> Self {
        self.target = Some(triple.into());
        self
    }

    /// Builds (or copies) the sidecar, printing the `cargo:` directives; on failure reports why with
    /// `cargo::error` (which fails the build) and ends the build script there, so that nothing after
    /// it (e.g. `tauri_build`'s check for the missing sidecar) buries the message.
    pub fn build(self) -> PathBuf {
        match self.try_build() {
            Ok(path) => path,
            Err(error) => {
                for line in error.to_string().lines() {
                    println!("cargo::error={line}");
                }
                std::process::exit(0);
            }
        }
    }

    /// Builds (or copies) the sidecar and prints the `cargo:` directives. Returns the output path.
    pub fn try_build(self) -> Result<PathBuf> {
        let built = self.run(&|key| std::env::var_os(key).filter(|v| !v.is_empty()))?;
        for directive in &built.directives {
            println!("{directive}");
        }
        Ok(built.path)
    }

    /// The whole job, with the environment passed in (so tests need not mutate the process's).
    fn run(&self, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<Built> {
        let required = |name: &'static str, hint: &'static str| {
            env(name).ok_or(Error::MissingEnv { name, hint })
        };
        let triple = match &self.target {
            Some(triple) => triple.clone(),
            None => required("TARGET", "call this from a build script (build.rs)")?
                .to_string_lossy()
                .into_owned(),
        };
        let target = GoTarget::from_rust_triple(&triple)?;
        let name = self.name.as_deref().unwrap_or(SIDECAR_NAME);
        let out_dir = self.out_dir.clone().unwrap_or_else(|| "binaries".into());
        let out_dir = if out_dir.is_absolute() {
            out_dir
        } else {
            PathBuf::from(required(
                "CARGO_MANIFEST_DIR",
                "call this from a build script (build.rs)",
            )?)
            .join(out_dir)
        };
        let file_name = format!("{name}-{triple}{}", target.exe_suffix);
        let output = out_dir.join(&file_name);
        fs::create_dir_all(&out_dir).map_err(io_error("create", &out_dir))?;

        let mut directives = vec![format!("cargo:rerun-if-env-changed={PREBUILT_ENV}")];
        if let Some(prebuilt) = env(PREBUILT_ENV)
            .map(PathBuf::from)
            .or_else(|| self.prebuilt.clone())
        {
            directives.push(format!("cargo:rerun-if-changed={}", prebuilt.display()));
            let modified = check_prebuilt(&prebuilt)?;
            let staged = staging_path(&out_dir, &file_name);
            fs::copy(&prebuilt, &staged)
                .map_err(io_error("copy the prebuilt sidecar to", &staged))?;
            finish(&staged, &output, modified)?;
            return Ok(Built {
                path: output,
                directives,
            });
        }

        let go_dir = match &self.go_dir {
            Some(dir) => dir.clone(),
            None => PathBuf::from(required(
                GO_BACKEND_DIR_ENV,
                "the app must depend on tauri-plugin-anysync directly (its build script publishes \
                 the go-backend directory), or give Builder::go_dir",
            )?),
        };
        let go_mod = go_dir.join("go.mod");
        if !go_mod.is_file() {
            return Err(Error::NotAGoModule { dir: go_dir });
        }
        // An app's own backend module usually points at the plugin's Go module with a local
        // `replace`; a change there must rebuild the sidecar too.
        let mut inputs = go_inputs(&go_dir).map_err(io_error("read the Go sources in", &go_dir))?;
        for dir in local_replacements(&go_mod) {
            let replaced = go_inputs(&dir).map_err(io_error("read the Go sources in", &dir))?;
            inputs.newest = inputs.newest.max(replaced.newest);
            inputs.watched.extend(replaced.watched);
        }
        directives.extend(
            inputs
                .watched
                .iter()
                .map(|p| format!("cargo:rerun-if-changed={}", p.display())),
        );

        let go = self.go.clone().unwrap_or_else(|| "go".into());
        let package = self.package.as_deref().unwrap_or(DEFAULT_PACKAGE);
        let staged = staging_path(&out_dir, &file_name);
        let args: Vec<&OsStr> = vec![
            "build".as_ref(),
            "-trimpath".as_ref(),
            "-buildvcs=false".as_ref(),
            "-ldflags".as_ref(),
            "-s -w".as_ref(),
            "-o".as_ref(),
            staged.as_os_str(),
            package.as_ref(),
        ];
        let mut command = Command::new(&go);
        command
            .args(&args)
            .current_dir(&go_dir)
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .env("GOWORK", "off")
            .env("GOOS", target.goos)
            .env("GOARCH", target.goarch);
        match target.goarm {
            Some(goarm) => command.env("GOARM", goarm),
            None => command.env_remove("GOARM"),
        };
        let result = command.output().map_err(|source| Error::GoNotFound {
            go: go.clone(),
            required: go_directive(&go_mod),
            source,
        })?;
        if !result.status.success() {
            let _ = fs::remove_file(&staged);
            let shown: Vec<String> = args
                .iter()
                .map(|a| {
                    let a = a.to_string_lossy();
                    if a.contains(' ') {
                        format!("\"{a}\"")
                    } else {
                        a.into_owned()
                    }
                })
                .collect();
            let arm = target
                .goarm
                .map_or_else(String::new, |v| format!(" GOARM={v}"));
            return Err(Error::GoBuildFailed {
                command: format!(
                    "(cd {} && CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOOS={} GOARCH={}{arm} {} {})",
                    go_dir.display(),
                    target.goos,
                    target.goarch,
                    go.display(),
                    shown.join(" ")
                ),
                status: result.status.to_string(),
                stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
            });
        }
        finish(&staged, &output, inputs.newest)?;
        Ok(Built {
            path: output,
            directives,
        })
    }
}

/// What [`Builder::run`] produced.
#[derive(Debug)]
struct Built {
    path: PathBuf,
    directives: Vec<String>,
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A temporary name in the output directory, so a failed or interrupted build never leaves a
/// truncated sidecar under the real name.
fn staging_path(out_dir: &Path, file_name: &str) -> PathBuf {
    out_dir.join(format!(".{file_name}.{}.tmp", std::process::id()))
}

/// Moves the staged file into place and dates it like its newest input.
///
/// `tauri_build` watches `binaries/*` with `rerun-if-changed`, and cargo reruns a build script
/// whenever a watched file is newer than the script's last start: a sidecar stamped "now" would make
/// every later build rerun both scripts. Its inputs are older than the start, so their date is safe.
fn finish(staged: &Path, output: &Path, modified: Option<SystemTime>) -> Result<()> {
    if let Some(modified) = modified {
        fs::File::options()
            .write(true)
            .open(staged)
            .and_then(|file| file.set_modified(modified))
            .map_err(io_error("set the modification time of", staged))?;
    }
    fs::rename(staged, output).map_err(|source| {
        let _ = fs::remove_file(staged);
        Error::Io {
            action: "move the sidecar into place at",
            path: output.to_owned(),
            source,
        }
    })
}

/// Checks that a prebuilt sidecar is an executable file; returns its modification time.
fn check_prebuilt(path: &Path) -> Result<Option<SystemTime>> {
    let bad = |problem: String| Error::BadPrebuilt {
        path: path.to_owned(),
        problem,
    };
    let meta = fs::metadata(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    if !meta.is_file() {
        return Err(bad("is not a file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(bad("is not executable (chmod +x it)".into()));
        }
    }
    Ok(meta.modified().ok())
}

/// The Go module's sources, as the build script must watch them.
#[derive(Debug, Default)]
struct GoInputs {
    /// Paths for `rerun-if-changed`: `go.mod`, `go.sum`, every `*.go` and `*.proto`, and every source
    /// directory below the module root (so a new file is noticed too; cargo scans directories).
    watched: Vec<PathBuf>,
    /// The newest modification time among the source files.
    newest: Option<SystemTime>,
}

/// Walks the module like the go command does: directories named `testdata` or starting with `.` or
/// `_` are not sources. `bin/` at the root is skipped too (the conventional local output directory).
fn go_inputs(root: &Path) -> io::Result<GoInputs> {
    let mut inputs = GoInputs::default();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let mut entries = fs::read_dir(&dir)?.collect::<io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                let ignored = name.starts_with('.')
                    || name.starts_with('_')
                    || name == "testdata"
                    || (dir == root && name == "bin");
                if !ignored {
                    inputs.watched.push(path.clone());
                    pending.push(path);
                }
            } else if name == "go.mod"
                || name == "go.sum"
                || name.ends_with(".go")
                || name.ends_with(".proto")
            {
                let modified = entry.metadata()?.modified()?;
                inputs.newest = inputs.newest.max(Some(modified));
                inputs.watched.push(path);
            }
        }
    }
    inputs.watched.sort();
    Ok(inputs)
}

/// The existing local directories that go.mod's `replace` directives point at (`=> ../dir`),
/// resolved against the module's directory; module paths and versions are not local.
fn local_replacements(go_mod: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(go_mod) else {
        return Vec::new();
    };
    let base = go_mod.parent().unwrap_or(Path::new("."));
    let mut in_block = false;
    let mut dirs = Vec::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        let spec = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if let Some(rest) = line.strip_prefix("replace") {
            let rest = rest.trim();
            if rest == "(" {
                in_block = true;
                continue;
            }
            rest
        } else {
            continue;
        };
        let Some((_, target)) = spec.split_once("=>") else {
            continue;
        };
        let target = target.trim();
        if target.starts_with("./") || target.starts_with("../") || Path::new(target).is_absolute()
        {
            let dir = base.join(target);
            if dir.join("go.mod").is_file() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// The version in go.mod's `go` directive, for the "install Go" message.
fn go_directive(go_mod: &Path) -> Option<String> {
    let text = fs::read_to_string(go_mod).ok()?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("go "))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn target(triple: &str) -> GoTarget {
        GoTarget::from_rust_triple(triple).unwrap_or_else(|e| panic!("{triple}: {e}"))
    }

    #[test]
    fn local_replacements_are_watched_and_remote_ones_are_not() {
        let root = tempfile::tempdir().expect("tempdir");
        let plugin = root.path().join("plugin");
        let app = root.path().join("app");
        fs::create_dir_all(&plugin).expect("mkdir");
        fs::create_dir_all(&app).expect("mkdir");
        fs::write(plugin.join("go.mod"), "module example.com/plugin\n").expect("write");
        fs::write(
            app.join("go.mod"),
            "module example.com/app\n\nreplace example.com/plugin => ../plugin // local\n\
             replace (\n\texample.com/other v1.0.0 => example.com/fork v1.2.0\n\texample.com/gone => ../gone\n)\n",
        )
        .expect("write");
        assert_eq!(
            local_replacements(&app.join("go.mod")),
            vec![app.join("../plugin")]
        );
    }

    #[test]
    fn maps_every_desktop_target_tauri_supports() {
        for (triple, goos, goarch, goarm, exe) in [
            ("x86_64-unknown-linux-gnu", "linux", "amd64", None, ""),
            ("x86_64-unknown-linux-musl", "linux", "amd64", None, ""),
            ("i686-unknown-linux-gnu", "linux", "386", None, ""),
            ("aarch64-unknown-linux-gnu", "linux", "arm64", None, ""),
            (
                "armv7-unknown-linux-gnueabihf",
                "linux",
                "arm",
                Some("7"),
                "",
            ),
            ("arm-unknown-linux-gnueabihf", "linux", "arm", Some("6"), ""),
            ("arm-unknown-linux-gnueabi", "linux", "arm", Some("5"), ""),
            ("riscv64gc-unknown-linux-gnu", "linux", "riscv64", None, ""),
            ("x86_64-apple-darwin", "darwin", "amd64", None, ""),
            ("aarch64-apple-darwin", "darwin", "arm64", None, ""),
            ("x86_64-pc-windows-msvc", "windows", "amd64", None, ".exe"),
            ("i686-pc-windows-msvc", "windows", "386", None, ".exe"),
            ("aarch64-pc-windows-msvc", "windows", "arm64", None, ".exe"),
            ("x86_64-pc-windows-gnu", "windows", "amd64", None, ".exe"),
            ("x86_64-unknown-freebsd", "freebsd", "amd64", None, ""),
        ] {
            assert_eq!(
                target(triple),
                GoTarget {
                    goos,
                    goarch,
                    goarm,
                    exe_suffix: exe
                },
                "{triple}"
            );
        }
    }

    #[test]
    fn refuses_targets_without_a_sidecar() {
        for (triple, why) in [
            ("aarch64-linux-android", "mobile"),
            ("aarch64-apple-ios", "mobile"),
            ("aarch64-apple-ios-sim", "mobile"),
            ("wasm32-unknown-unknown", "operating system"),
            ("sparc64-unknown-linux-gnu", "CPU architecture"),
        ] {
            let err = GoTarget::from_rust_triple(triple).expect_err(triple);
            let message = err.to_string();
            assert!(
                message.contains(triple) && message.contains(why),
                "{message}"
            );
        }
    }

    /// A builder run against a fake environment.
    struct Fixture {
        dir: tempfile::TempDir,
        env: HashMap<&'static str, OsString>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let app = dir.path().join("app");
            fs::create_dir_all(&app).expect("app dir");
            let mut env = HashMap::new();
            env.insert("TARGET", OsString::from("x86_64-unknown-linux-gnu"));
            env.insert("CARGO_MANIFEST_DIR", app.into_os_string());
            Self { dir, env }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.path(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, text).expect("write");
            path
        }

        /// A Go module with a `main` in cmd/server, a test file, and an ignored bin/ and testdata/.
        fn go_module(&self) -> PathBuf {
            self.write("go/go.mod", "module example.com/sidecar\n\ngo 1.21\n");
            self.write(
                "go/cmd/server/main.go",
                "package main\n\nfunc main() { println(\"hi\") }\n",
            );
            self.write("go/cmd/server/main_test.go", "package main\n");
            self.write("go/api/proto/x.proto", "syntax = \"proto3\";\n");
            self.write("go/bin/anysync-backend", "old output");
            self.write("go/cmd/server/testdata/data.go", "not a source");
            self.write("go/README.md", "not a source");
            self.path("go")
        }

        fn run(&self, builder: Builder) -> Result<Built> {
            builder.run(&|key| self.env.get(key).cloned())
        }
    }

    #[test]
    fn without_go_it_says_to_install_go_or_set_anysync_sidecar() {
        let fx = Fixture::new();
        let go_dir = fx.go_module();
        let err = fx
            .run(
                Builder::new()
                    .go_dir(&go_dir)
                    .go_binary(fx.path("no-such-go")),
            )
            .expect_err("go is missing");
        assert!(matches!(err, Error::GoNotFound { .. }), "{err:?}");
        let message = err.to_string();
        for needle in [
            "Install Go 1.21 or newer",
            "https://go.dev/dl/",
            "ANYSYNC_SIDECAR=",
        ] {
            assert!(message.contains(needle), "{needle:?} missing in: {message}");
        }
        assert!(
            !fx.path("app/binaries/anysync-backend-x86_64-unknown-linux-gnu")
                .exists(),
            "no output on failure"
        );
    }

    #[test]
    fn anysync_sidecar_is_checked_and_copied_without_go() {
        let mut fx = Fixture::new();
        let prebuilt = fx.write("prebuilt/anysync-backend", "#!/bin/sh\necho prebuilt\n");
        make_executable(&prebuilt, true);
        fx.env
            .insert(PREBUILT_ENV, prebuilt.clone().into_os_string());
        let built = fx
            .run(Builder::new().go_binary(fx.path("no-such-go")))
            .expect("copies the prebuilt sidecar");
        assert_eq!(
            built.path,
            fx.path("app/binaries/anysync-backend-x86_64-unknown-linux-gnu")
        );
        assert_eq!(
            fs::read(&built.path).expect("output"),
            fs::read(&prebuilt).expect("input")
        );
        assert_eq!(mtime(&built.path), mtime(&prebuilt), "dated like its input");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&built.path)
                .expect("meta")
                .permissions()
                .mode();
            assert_ne!(mode & 0o111, 0, "output is executable");
        }
        assert!(built
            .directives
            .contains(&"cargo:rerun-if-env-changed=ANYSYNC_SIDECAR".to_owned()));
        assert!(built
            .directives
            .contains(&format!("cargo:rerun-if-changed={}", prebuilt.display())));
        assert_eq!(
            leftovers(&fx.path("app/binaries")),
            1,
            "no staging files left"
        );
    }

    #[test]
    fn anysync_sidecar_must_be_an_executable_file() {
        let mut fx = Fixture::new();
        let dir = fx.path("prebuilt-dir");
        fs::create_dir_all(&dir).expect("mkdir");
        let plain = fx.write("plain-file", "data");
        make_executable(&plain, false);
        let mut cases = vec![
            (fx.path("missing"), "cannot be read"),
            (dir, "is not a file"),
        ];
        if cfg!(unix) {
            cases.push((plain, "is not executable"));
        }
        for (path, problem) in cases {
            fx.env.insert(PREBUILT_ENV, path.clone().into_os_string());
            let err = fx.run(Builder::new()).expect_err("bad prebuilt");
            let message = err.to_string();
            assert!(
                matches!(err, Error::BadPrebuilt { .. })
                    && message.contains(problem)
                    && message.contains(&format!("ANYSYNC_SIDECAR={}", path.display())),
                "{message}"
            );
        }
    }

    #[test]
    fn names_the_missing_go_backend_dir() {
        let fx = Fixture::new();
        let err = fx.run(Builder::new()).expect_err("no DEP_ variable");
        let message = err.to_string();
        assert!(
            message.contains(GO_BACKEND_DIR_ENV)
                && message.contains("depend on tauri-plugin-anysync"),
            "{message}"
        );
        let err = fx
            .run(Builder::new().go_dir(fx.path("app")))
            .expect_err("not a module");
        assert!(matches!(err, Error::NotAGoModule { .. }), "{err}");
    }

    #[test]
    fn watches_go_sources_only() {
        let fx = Fixture::new();
        let go_dir = fx.go_module();
        let inputs = go_inputs(&go_dir).expect("walk");
        let rel: Vec<String> = inputs
            .watched
            .iter()
            .map(|p| {
                p.strip_prefix(&go_dir)
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            rel,
            [
                "api",
                "api/proto",
                "api/proto/x.proto",
                "cmd",
                "cmd/server",
                "cmd/server/main.go",
                "cmd/server/main_test.go",
                "go.mod",
            ]
        );
        assert_eq!(
            inputs.newest,
            Some(
                mtime(&go_dir.join("cmd/server/main_test.go"))
                    .max(mtime(&go_dir.join("api/proto/x.proto")))
            )
        );
    }

    #[test]
    fn builds_with_go_for_the_rust_target() {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("skipped: no `go` on PATH");
            return;
        }
        let mut fx = Fixture::new();
        let go_dir = fx.go_module();
        for (triple, magic) in [
            ("x86_64-unknown-linux-gnu", &b"\x7fELF"[..]),
            ("x86_64-pc-windows-msvc", &b"MZ"[..]),
        ] {
            fx.env.insert("TARGET", triple.into());
            let built = fx
                .run(Builder::new().go_dir(&go_dir))
                .unwrap_or_else(|e| panic!("{triple}: {e}"));
            let suffix = if triple.contains("windows") {
                ".exe"
            } else {
                ""
            };
            assert_eq!(
                built.path,
                fx.path(&format!("app/binaries/anysync-backend-{triple}{suffix}"))
            );
            let bytes = fs::read(&built.path).expect("output");
            assert!(
                bytes.starts_with(magic),
                "{triple}: not an executable for it"
            );
            assert!(
                mtime(&built.path) <= SystemTime::now()
                    && Some(mtime(&built.path)) == go_inputs(&go_dir).expect("walk").newest,
                "dated like the newest source"
            );
            assert!(built.directives.contains(&format!(
                "cargo:rerun-if-changed={}",
                go_dir.join("cmd/server/main.go").display()
            )));
        }
        assert_eq!(
            leftovers(&fx.path("app/binaries")),
            2,
            "no staging files left"
        );

        fx.write(
            "go/cmd/server/main.go",
            "package main\n\nfunc main() { oops }\n",
        );
        let err = fx
            .run(Builder::new().go_dir(&go_dir))
            .expect_err("compile error");
        let message = err.to_string();
        assert!(
            matches!(err, Error::GoBuildFailed { .. })
                && message.contains("undefined: oops")
                && message.contains("GOOS=windows GOARCH=amd64")
                && message.contains("\"-s -w\""),
            "{message}"
        );
        assert_eq!(
            leftovers(&fx.path("app/binaries")),
            2,
            "no staging files left"
        );
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("mtime")
    }

    fn leftovers(dir: &Path) -> usize {
        fs::read_dir(dir).expect("read_dir").count()
    }

    fn make_executable(path: &Path, executable: bool) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if executable { 0o755 } else { 0o644 };
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        #[cfg(not(unix))]
        let _ = (path, executable);
    }
}
