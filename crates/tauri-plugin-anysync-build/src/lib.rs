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
//! It runs `go build -trimpath -buildvcs=false -ldflags "-s -w" ./cmd/server` (for Windows
//! `-ldflags "-s -w -H=windowsgui"`: see [`ldflags`]) in the plugin's
//! `go-backend` (published by the plugin's build script as `DEP_TAURI_PLUGIN_ANYSYNC_GO_BACKEND_DIR`)
//! with `CGO_ENABLED=0`, `GOTOOLCHAIN=local`, `GOWORK=off` and `GOOS`/`GOARCH`/`GOARM` mapped from
//! cargo's description of the target (`CARGO_CFG_TARGET_OS`, `_ARCH`, `_ENV`, `_ABI`, `_ENDIAN`; the
//! `TARGET` triple is parsed only without them, or for a [`Builder::target`] other than cargo's, and
//! gives the ARM version, which stable cargo does not describe), and writes
//! `binaries/anysync-backend-<target-triple>[.exe]` beside the app's Cargo.toml. The backend's
//! version is a constant in its `internal/version` package, so no `-X` flag is needed.
//!
//! ## Targets
//!
//! - Desktop targets build as they are (`armv7-unknown-linux-gnueabihf` is `GOARM=7`, plain
//!   `arm-*-gnueabihf` 6, soft-float `arm-*` 5).
//! - Mobile targets map to Go's own ports (`armv7-linux-androideabi` is `GOOS=android GOARCH=arm
//!   GOARM=7`, `aarch64-apple-ios-sim` is `GOOS=ios GOARCH=arm64`), but the plugin runs no sidecar
//!   there (the backend is linked in through gomobile, the mobile phase). `aarch64-linux-android`
//!   builds, as Go links android/arm64 executables without cgo; Go links every other Android and
//!   every iOS executable only through cgo and the platform's C toolchain, so for those the helper
//!   fails with [`Error::NeedsCgo`], which says what to do: keep `bundle.externalBin` in the desktop
//!   platform configs (`tauri.linux.conf.json`, `tauri.macos.conf.json`, `tauri.windows.conf.json`)
//!   and call the helper only when `CARGO_CFG_TARGET_OS` is neither `android` nor `ios`, or set
//!   `ANYSYNC_SIDECAR` to a file to copy.
//! - `universal-apple-darwin` ([`UNIVERSAL_MACOS`]): Go builds darwin/amd64 and darwin/arm64 and the
//!   helper joins them into one universal Mach-O file itself ([`universal_macho`], the layout
//!   `lipo -create` writes), so no Xcode is needed. Cargo never builds for this triple: `tauri build
//!   --target universal-apple-darwin` runs one cargo build per architecture (`TARGET` is
//!   `aarch64-apple-darwin`, then `x86_64-apple-darwin`, each needing its own file), and the bundler
//!   then looks for `binaries/<name>-universal-apple-darwin`. So a macOS app that ships universal
//!   builds asks for that file too:
//!
//! ```no_run
//! // build.rs
//! # fn main() {
//! tauri_plugin_anysync_build::build_sidecar();
//! if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
//!     tauri_plugin_anysync_build::Builder::new()
//!         .target(tauri_plugin_anysync_build::UNIVERSAL_MACOS)
//!         .build();
//! }
//! # }
//! ```
//!
//! ## When it reruns
//!
//! The script reruns when a Go source (`*.go`, `go.mod`, `go.sum`, `*.proto`) of the module, or of
//! a module its go.mod `replace`s with a local directory, changes; when `ANYSYNC_SIDECAR` or a
//! variable that changes Go's output ([`GO_ENV_WATCHED`]: `GOFLAGS`, `GOAMD64`, `GOARM64`,
//! `GOEXPERIMENT`, ..., `GOROOT`) changes; and when the toolchain's `$(go env GOROOT)/VERSION`
//! file is newer than the last build. `CGO_ENABLED` is not watched: it is always
//! 0. The Go version is watched through that file rather than a stamp of `go env GOVERSION`:
//! cargo decides about a rerun from file dates and variables alone, without running the script,
//! so a stamp the script compares would only be read once the script already runs (and it then
//! rebuilds anyway, Go's build cache making that cheap). A Go installed in place with its
//! release's old file dates (`tar -x` keeps them) is therefore not noticed: after such an
//! upgrade, or after putting another `go` first on `PATH` (not watched: it differs between a
//! terminal and an editor often enough to rebuild the app at every switch), `touch build.rs` (or
//! `cargo clean -p <app>`) rebuilds the sidecar.
//!
//! An app with its own Go backend (its own services on the plugin's public `backend` package) points
//! the helper at its module: `Builder::new().go_dir("../backend").package(".").build()`.
//!
//! Without Go, set `ANYSYNC_SIDECAR=/path/to/prebuilt/anysync-backend`: that file is copied instead,
//! once its header shows an executable of the target's format and CPU ([`executable::check`]; a
//! file for another target, a script or a text file fails the build saying what it is).

#![warn(missing_docs)]

pub mod executable;

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
    /// Go has a port for the target, but links executables for it only through cgo (Android on
    /// anything but arm64, iOS), and the sidecar is built with `CGO_ENABLED=0`.
    NeedsCgo {
        /// The Rust target triple.
        triple: String,
        /// Its `GOOS`.
        goos: &'static str,
        /// Its `GOARCH`.
        goarch: &'static str,
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
            Self::NeedsCgo {
                triple,
                goos,
                goarch,
            } => write!(
                f,
                "cannot build the anysync sidecar for target {triple}: Go links a GOOS={goos} \
                 GOARCH={goarch} executable only through cgo and the platform's C toolchain, and the \
                 sidecar is built with CGO_ENABLED=0. On Android and iOS the plugin runs no sidecar \
                 (the backend is linked into the app through gomobile, the mobile phase), so the \
                 mobile build needs no file: list `bundle.externalBin` in the desktop platform \
                 configs (tauri.linux.conf.json, tauri.macos.conf.json, tauri.windows.conf.json) \
                 instead of tauri.conf.json, and call the helper only when CARGO_CFG_TARGET_OS is \
                 not android or ios; or set {PREBUILT_ENV}=/path/to/a/file to copy one"
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

/// A Go build target: what `GOOS`, `GOARCH` and `GOARM` must be for a Rust target.
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

/// The target as cargo describes it to a build script: `CARGO_CFG_TARGET_OS`, `_ARCH`, `_ENV`,
/// `_ABI`, `_ENDIAN` and `_FEATURE` (the `cfg(target_*)` values, which the triple only encodes
/// loosely: `armv7-linux-androideabi` is `target_os = "android"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCfg {
    /// `target_os`: `linux`, `android`, `macos`, `ios`, `windows`, ...
    pub os: String,
    /// `target_arch`: `x86_64`, `x86`, `aarch64`, `arm`, ...
    pub arch: String,
    /// `target_env`: `gnu`, `musl`, `msvc`, `sim` (iOS simulators), or empty.
    pub env: String,
    /// `target_abi`: `eabi`, `eabihf` (hard-float ARM), `sim`, or empty.
    pub abi: String,
    /// `target_endian`: `little` or `big`; empty means little.
    pub endian: String,
    /// `target_feature`, comma-separated. The ARM version features (`v7`, `v6`) are unstable and
    /// absent on stable Rust; the ARM version then comes from the triple (`armv7-...`).
    pub features: String,
}

impl TargetCfg {
    /// Cargo's description of the target being built, from the build script's environment;
    /// `None` when cargo did not set `CARGO_CFG_TARGET_OS` and `CARGO_CFG_TARGET_ARCH`.
    fn from_env(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<Self> {
        let var = |name: &str| env(name).map(|v| v.to_string_lossy().into_owned());
        Some(Self {
            os: var("CARGO_CFG_TARGET_OS")?,
            arch: var("CARGO_CFG_TARGET_ARCH")?,
            env: var("CARGO_CFG_TARGET_ENV").unwrap_or_default(),
            abi: var("CARGO_CFG_TARGET_ABI").unwrap_or_default(),
            endian: var("CARGO_CFG_TARGET_ENDIAN").unwrap_or_default(),
            features: var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default(),
        })
    }

    /// The fallback when cargo's `CARGO_CFG_*` are not there (or [`Builder::target`] names another
    /// target than cargo's): what a Rust target triple says about the same things.
    pub fn guess_from_triple(triple: &str) -> Self {
        let mut parts = triple.split('-');
        let arch_part = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let has = |part: &str| rest.contains(&part);
        let last = rest.last().copied().unwrap_or_default();
        let os = if rest.iter().any(|p| p.starts_with("android")) {
            "android"
        } else if has("ios") {
            "ios"
        } else if has("darwin") || has("macos") {
            "macos"
        } else {
            [
                "linux",
                "windows",
                "freebsd",
                "netbsd",
                "openbsd",
                "dragonfly",
                "illumos",
                "solaris",
                "aix",
            ]
            .into_iter()
            .find(|os| has(os))
            .unwrap_or(last)
        };
        let env = ["gnu", "musl", "msvc", "uclibc", "sim"]
            .into_iter()
            .find(|env| last.starts_with(env))
            .unwrap_or("");
        let abi = ["eabihf", "eabi", "sim"]
            .into_iter()
            .find(|abi| last.ends_with(abi))
            .unwrap_or("");
        let arch = match arch_part {
            "x86_64" | "x86_64h" => "x86_64",
            "i386" | "i586" | "i686" => "x86",
            "aarch64" | "arm64" | "arm64e" => "aarch64",
            a if a.starts_with("arm") || a.starts_with("thumb") => "arm",
            "riscv64gc" | "riscv64" => "riscv64",
            "powerpc64le" | "powerpc64" => "powerpc64",
            "mips64el" | "mips64" => "mips64",
            "mipsel" | "mips" => "mips",
            other => other,
        };
        let big = matches!(arch_part, "powerpc64" | "mips64" | "mips" | "s390x");
        Self {
            os: os.to_owned(),
            arch: arch.to_owned(),
            env: env.to_owned(),
            abi: abi.to_owned(),
            endian: if big { "big" } else { "little" }.to_owned(),
            features: String::new(),
        }
    }

    /// `GOARM` for a 32-bit ARM target: 7 and 6 use the VFP unit, 5 is the soft-float baseline.
    /// From the version features where cargo has them (nightly), else from the triple's
    /// architecture (`armv7`, `thumbv7neon`, `armv6`, ...); a plain `arm-*` is ARMv6, with a VFP
    /// unit only on the hard-float ABI.
    fn goarm(&self, triple: &str) -> &'static str {
        let arch = triple.split('-').next().unwrap_or_default();
        if self.has_feature("v7") || self.has_feature("v8") {
            "7"
        } else if self.has_feature("v6") && self.has_feature("vfp2") {
            "6"
        } else if arch.starts_with("armv7")
            || arch.starts_with("thumbv7")
            || arch.starts_with("armv8")
        {
            "7"
        } else if (arch.starts_with("armv6") || arch == "arm")
            && (self.abi == "eabihf" || triple.ends_with("hf"))
        {
            "6"
        } else {
            "5"
        }
    }

    fn has_feature(&self, feature: &str) -> bool {
        self.features.split(',').any(|f| f == feature)
    }
}

impl GoTarget {
    /// Maps a Rust target triple (`x86_64-unknown-linux-gnu`, `armv7-linux-androideabi`, ...) to Go,
    /// by what the triple says; a build script has cargo's exact description
    /// ([`GoTarget::from_cfg`]), which [`Builder`] prefers.
    pub fn from_rust_triple(triple: &str) -> Result<Self> {
        Self::from_cfg(&TargetCfg::guess_from_triple(triple), triple)
    }

    /// Maps cargo's description of a target to Go; `triple` only names it in errors.
    ///
    /// Every target Go has a port for maps, mobile ones too (`android`, `ios`); whether Go can
    /// link a sidecar executable for it without cgo is [`GoTarget::links_without_cgo`].
    pub fn from_cfg(cfg: &TargetCfg, triple: &str) -> Result<Self> {
        let unsupported = |reason| Error::UnsupportedTarget {
            triple: triple.to_owned(),
            reason,
        };
        let goos = match cfg.os.as_str() {
            "linux" => "linux",
            "android" => "android",
            "macos" => "darwin",
            "ios" => "ios",
            "windows" => "windows",
            "freebsd" => "freebsd",
            "netbsd" => "netbsd",
            "openbsd" => "openbsd",
            "dragonfly" => "dragonfly",
            "illumos" => "illumos",
            "solaris" => "solaris",
            "aix" => "aix",
            _ => return Err(unsupported("Go has no port for its operating system")),
        };
        let little = cfg.endian != "big";
        let (goarch, goarm) = match cfg.arch.as_str() {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some(cfg.goarm(triple))),
            "riscv64" => ("riscv64", None),
            "powerpc64" if little => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            "mips64" if little => ("mips64le", None),
            "mips64" => ("mips64", None),
            "mips" if little => ("mipsle", None),
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

    /// Whether Go can link an executable for this target with `CGO_ENABLED=0`, as the sidecar is
    /// built. Go links Android executables for anything but arm64, and every iOS one, only
    /// externally, through cgo and the platform's C toolchain (NDK, Xcode SDK).
    pub fn links_without_cgo(&self) -> bool {
        match self.goos {
            "android" => self.goarch == "arm64",
            "ios" => false,
            _ => true,
        }
    }
}

/// The Rust target cargo's `--target universal-apple-darwin` (as `tauri build` takes it) names: one
/// file with both macOS architectures.
pub const UNIVERSAL_MACOS: &str = "universal-apple-darwin";

/// The two slices of a universal macOS sidecar, in the order `lipo` writes them.
const UNIVERSAL_SLICES: [GoTarget; 2] = [
    GoTarget {
        goos: "darwin",
        goarch: "amd64",
        goarm: None,
        exe_suffix: "",
    },
    GoTarget {
        goos: "darwin",
        goarch: "arm64",
        goarm: None,
        exe_suffix: "",
    },
];

/// Joins thin 64-bit Mach-O executables into one universal ("fat") file, as `lipo -create` does:
/// a big-endian header (`FAT_MAGIC`, the slice count, then per slice its CPU type and subtype,
/// offset, size and alignment as a power of two), then each slice at an offset aligned to 2^14.
/// The CPU type and subtype are each slice's own, read from its Mach-O header.
pub fn universal_macho(slices: &[Vec<u8>]) -> std::result::Result<Vec<u8>, String> {
    const FAT_MAGIC: u32 = 0xcafe_babe;
    const MH_MAGIC_64: u32 = 0xfeed_facf;
    const ALIGN_POW: u32 = 14;
    const ALIGN: usize = 1 << ALIGN_POW;
    let round_up = |n: usize| n.div_ceil(ALIGN) * ALIGN;
    let header_len = 8 + 20 * slices.len();
    let mut offset = round_up(header_len);
    let mut header = Vec::with_capacity(header_len);
    header.extend_from_slice(&FAT_MAGIC.to_be_bytes());
    header.extend_from_slice(&(slices.len() as u32).to_be_bytes());
    let mut seen = Vec::new();
    for (i, slice) in slices.iter().enumerate() {
        let word = |at: usize| {
            slice
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if word(0) != Some(MH_MAGIC_64) {
            return Err(format!("slice {i} is not a 64-bit Mach-O file"));
        }
        let (cputype, cpusubtype) = (word(4).unwrap_or(0), word(8).unwrap_or(0));
        if seen.contains(&cputype) {
            return Err(format!("slice {i} repeats CPU type {cputype:#x}"));
        }
        seen.push(cputype);
        let size = u32::try_from(slice.len()).map_err(|_| format!("slice {i} is over 4 GiB"))?;
        let at =
            u32::try_from(offset).map_err(|_| "the universal file is over 4 GiB".to_owned())?;
        for field in [cputype, cpusubtype, at, size, ALIGN_POW] {
            header.extend_from_slice(&field.to_be_bytes());
        }
        offset = round_up(offset + slice.len());
    }
    let mut out = header;
    for slice in slices {
        out.resize(round_up(out.len()), 0);
        out.extend_from_slice(slice);
    }
    Ok(out)
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

    /// The Rust target triple to build for. Default: cargo's `TARGET` (described by its
    /// `CARGO_CFG_TARGET_*`; another triple is mapped from its name). [`UNIVERSAL_MACOS`]
    /// (`universal-apple-darwin`) builds one universal macOS file with both architectures.
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
        // Cargo's `CARGO_CFG_TARGET_*` describe its `TARGET` exactly; the triple is only parsed when
        // they are missing, or when `Builder::target` names another target.
        let cargo_target = env("TARGET").map(|t| t.to_string_lossy().into_owned());
        let cfg = TargetCfg::from_env(env)
            .filter(|_| cargo_target.as_deref() == Some(triple.as_str()))
            .unwrap_or_else(|| TargetCfg::guess_from_triple(&triple));
        let slices: Vec<GoTarget> = if triple == UNIVERSAL_MACOS {
            UNIVERSAL_SLICES.to_vec()
        } else {
            vec![GoTarget::from_cfg(&cfg, &triple)?]
        };
        let exe_suffix = slices[0].exe_suffix;
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
        let file_name = format!("{name}-{triple}{exe_suffix}");
        let output = out_dir.join(&file_name);
        fs::create_dir_all(&out_dir).map_err(io_error("create", &out_dir))?;

        let mut directives = vec![format!("cargo:rerun-if-env-changed={PREBUILT_ENV}")];
        if let Some(prebuilt) = env(PREBUILT_ENV)
            .map(PathBuf::from)
            .or_else(|| self.prebuilt.clone())
        {
            directives.push(format!("cargo:rerun-if-changed={}", prebuilt.display()));
            let modified = check_prebuilt(&prebuilt, &slices, &triple)?;
            let staged = staging_path(&out_dir, &file_name);
            fs::copy(&prebuilt, &staged)
                .map_err(io_error("copy the prebuilt sidecar to", &staged))?;
            finish(&staged, &output, modified)?;
            return Ok(Built {
                path: output,
                directives,
            });
        }
        if let Some(target) = slices.iter().find(|t| !t.links_without_cgo()) {
            return Err(Error::NeedsCgo {
                triple,
                goos: target.goos,
                goarch: target.goarch,
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
        directives.extend(
            GO_ENV_WATCHED
                .iter()
                .map(|var| format!("cargo:rerun-if-env-changed={var}")),
        );

        let go = self.go.clone().unwrap_or_else(|| "go".into());
        if let Some(version_file) = go_version_file(&go, &go_dir) {
            directives.push(format!("cargo:rerun-if-changed={}", version_file.display()));
        }
        let package = self.package.as_deref().unwrap_or(DEFAULT_PACKAGE);
        let staged = staging_path(&out_dir, &file_name);
        if let [target] = slices.as_slice() {
            go_build(&go, &go_dir, package, target, &staged)?;
        } else {
            let mut built = Vec::new();
            for target in &slices {
                let slice = out_dir.join(format!(
                    ".{file_name}.{}.{}.tmp",
                    std::process::id(),
                    target.goarch
                ));
                let result = go_build(&go, &go_dir, package, target, &slice)
                    .and_then(|()| fs::read(&slice).map_err(io_error("read", &slice)));
                let _ = fs::remove_file(&slice);
                built.push(result?);
            }
            let fat = universal_macho(&built).map_err(|problem| Error::Io {
                action: "join the macOS slices into",
                path: output.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, problem),
            })?;
            fs::write(&staged, fat).map_err(io_error("write", &staged))?;
            make_output_executable(&staged)?;
        }
        finish(&staged, &output, inputs.newest)?;
        Ok(Built {
            path: output,
            directives,
        })
    }
}

/// The variables that change what `go build` produces beside the target (which cargo's own
/// fingerprint covers): a change reruns the build script. `CGO_ENABLED`, `GOOS`, `GOARCH`,
/// `GOARM`, `GOTOOLCHAIN` and `GOWORK` are not here: the helper always sets them itself. Nor is
/// `PATH`: it differs between a terminal and an editor's build runs often enough that watching it
/// would rebuild the app at every switch.
pub const GO_ENV_WATCHED: [&str; 10] = [
    "GOFLAGS",
    "GOAMD64",
    "GOARM64",
    "GO386",
    "GORISCV64",
    "GOPPC64",
    "GOMIPS",
    "GOMIPS64",
    "GOEXPERIMENT",
    "GOROOT",
];

/// `$(go env GOROOT)/VERSION`, the toolchain's version file, for `rerun-if-changed`: cargo decides
/// about reruns by file dates and variables alone, without running anything, so this file (and
/// `GOROOT` naming another toolchain) is how a new Go is noticed. `None` when `go` cannot
/// tell (the build then reports why).
fn go_version_file(go: &Path, go_dir: &Path) -> Option<PathBuf> {
    let out = Command::new(go)
        .args(["env", "GOROOT"])
        .current_dir(go_dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .output()
        .ok()?;
    let root = String::from_utf8(out.stdout).ok()?;
    let file = Path::new(root.trim()).join("VERSION");
    (out.status.success() && file.is_file()).then_some(file)
}

/// The sidecar's linker flags: no symbol table or DWARF (`-s -w`), and for Windows a GUI-subsystem
/// executable (`-H=windowsgui`), which Windows never gives a console window, whoever starts it (a
/// console one gets a window unless its parent passes `CREATE_NO_WINDOW`, as the plugin does, and
/// a hidden console host process even then). Its standard handles are still the pipes its parent
/// passes (`STARTF_USESTDHANDLES`), so the stdin lifeline, stdout and stderr work as elsewhere; only
/// a sidecar started by hand from a console prints nothing there, and it gets no console Ctrl+C,
/// which the plugin never sends (closing stdin is its stop request on Windows).
pub fn ldflags(target: &GoTarget) -> &'static str {
    if target.goos == "windows" {
        "-s -w -H=windowsgui"
    } else {
        "-s -w"
    }
}

/// Runs `go build` of `package` for `target` into `out`.
fn go_build(go: &Path, go_dir: &Path, package: &str, target: &GoTarget, out: &Path) -> Result<()> {
    let args: Vec<&OsStr> = vec![
        "build".as_ref(),
        "-trimpath".as_ref(),
        "-buildvcs=false".as_ref(),
        "-ldflags".as_ref(),
        ldflags(target).as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        package.as_ref(),
    ];
    let mut command = Command::new(go);
    command
        .args(&args)
        .current_dir(go_dir)
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
        go: go.to_owned(),
        required: go_directive(&go_dir.join("go.mod")),
        source,
    })?;
    if result.status.success() {
        return Ok(());
    }
    let _ = fs::remove_file(out);
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
    Err(Error::GoBuildFailed {
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
    })
}

/// `chmod 755` on Unix (a file the helper wrote itself, not one `go build` made executable).
fn make_output_executable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(io_error("make executable", path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
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

/// Checks that a prebuilt sidecar is an executable file for `targets` (its format and CPU, read
/// from its header); returns its modification time.
fn check_prebuilt(path: &Path, targets: &[GoTarget], triple: &str) -> Result<Option<SystemTime>> {
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
    let mut start = Vec::with_capacity(executable::HEADER_LEN);
    fs::File::open(path)
        .and_then(|file| {
            use std::io::Read as _;
            file.take(executable::HEADER_LEN as u64)
                .read_to_end(&mut start)
        })
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    executable::check(&start, targets, triple).map_err(bad)?;
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
    use super::executable::tests::{elf, macho, pe};
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

    /// `rustc --print cfg --target <triple>` of stable Rust, as cargo hands it to a build script.
    fn cargo_cfg(triple: &str) -> TargetCfg {
        let (os, arch, env, abi) = match triple {
            "armv7-linux-androideabi" => ("android", "arm", "", "eabi"),
            "aarch64-linux-android" => ("android", "aarch64", "", ""),
            "x86_64-linux-android" => ("android", "x86_64", "", ""),
            "i686-linux-android" => ("android", "x86", "", ""),
            "aarch64-apple-ios" => ("ios", "aarch64", "", ""),
            "aarch64-apple-ios-sim" => ("ios", "aarch64", "sim", "sim"),
            "x86_64-apple-ios" => ("ios", "x86_64", "sim", "sim"),
            "arm-unknown-linux-gnueabihf" => ("linux", "arm", "gnu", "eabihf"),
            "armv7-unknown-linux-gnueabihf" => ("linux", "arm", "gnu", "eabihf"),
            "powerpc64-unknown-linux-gnu" => ("linux", "powerpc64", "gnu", "elfv1"),
            other => panic!("no cfg recorded for {other}"),
        };
        TargetCfg {
            os: os.into(),
            arch: arch.into(),
            env: env.into(),
            abi: abi.into(),
            endian: if arch == "powerpc64" { "big" } else { "little" }.into(),
            features: String::new(),
        }
    }

    #[test]
    fn maps_mobile_targets_from_cargo_cfg_and_from_the_triple_alike() {
        for (triple, goos, goarch, goarm, links) in [
            (
                "armv7-linux-androideabi",
                "android",
                "arm",
                Some("7"),
                false,
            ),
            ("aarch64-linux-android", "android", "arm64", None, true),
            ("x86_64-linux-android", "android", "amd64", None, false),
            ("i686-linux-android", "android", "386", None, false),
            ("aarch64-apple-ios", "ios", "arm64", None, false),
            ("aarch64-apple-ios-sim", "ios", "arm64", None, false),
            ("x86_64-apple-ios", "ios", "amd64", None, false),
            (
                "arm-unknown-linux-gnueabihf",
                "linux",
                "arm",
                Some("6"),
                true,
            ),
            (
                "armv7-unknown-linux-gnueabihf",
                "linux",
                "arm",
                Some("7"),
                true,
            ),
            ("powerpc64-unknown-linux-gnu", "linux", "ppc64", None, true),
        ] {
            let expected = GoTarget {
                goos,
                goarch,
                goarm,
                exe_suffix: "",
            };
            let from_cfg = GoTarget::from_cfg(&cargo_cfg(triple), triple)
                .unwrap_or_else(|e| panic!("{triple}: {e}"));
            assert_eq!(from_cfg, expected, "{triple} from cargo's cfg");
            assert_eq!(target(triple), expected, "{triple} from the triple");
            assert_eq!(from_cfg.links_without_cgo(), links, "{triple}");
        }
    }

    #[test]
    fn refuses_targets_go_has_no_port_for() {
        for (triple, why) in [
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

    #[test]
    fn a_target_go_links_only_with_cgo_fails_saying_what_to_do() {
        let mut fx = Fixture::new();
        let go_dir = fx.go_module();
        for triple in [
            "armv7-linux-androideabi",
            "x86_64-linux-android",
            "aarch64-apple-ios",
            "aarch64-apple-ios-sim",
        ] {
            fx.set_target(triple, Some(cargo_cfg(triple)));
            let err = fx
                .run(
                    Builder::new()
                        .go_dir(&go_dir)
                        .go_binary(fx.path("no-such-go")),
                )
                .expect_err(triple);
            let message = err.to_string();
            assert!(matches!(err, Error::NeedsCgo { .. }), "{triple}: {err:?}");
            for needle in [triple, "cgo", "gomobile", "externalBin", "ANYSYNC_SIDECAR="] {
                assert!(message.contains(needle), "{needle:?} missing in: {message}");
            }
        }
        // A prebuilt file is still copied for such a target.
        let prebuilt = fx.write("prebuilt/anysync-backend", macho(0x0100_000c, 2));
        make_executable(&prebuilt, true);
        fx.env.insert(PREBUILT_ENV, prebuilt.into_os_string());
        let built = fx
            .run(Builder::new().go_dir(&go_dir))
            .expect("copies the prebuilt file");
        assert!(built
            .path
            .ends_with("anysync-backend-aarch64-apple-ios-sim"));
    }

    #[test]
    fn cargo_cfg_decides_and_the_triple_only_names_the_file() {
        let mut fx = Fixture::new();
        let go_dir = fx.go_module();
        // A custom target (a target spec JSON): its name says nothing Go could use, cargo's cfg does.
        let custom = TargetCfg {
            os: "windows".into(),
            arch: "x86_64".into(),
            env: "msvc".into(),
            endian: "little".into(),
            ..TargetCfg::default()
        };
        fx.set_target("x86_64-acme-board", Some(custom));
        let err = fx
            .run(
                Builder::new()
                    .go_dir(&go_dir)
                    .go_binary(fx.path("no-such-go")),
            )
            .expect_err("no go");
        assert!(matches!(err, Error::GoNotFound { .. }), "{err}");
        // Mapped from the cfg: a Windows sidecar, named after the triple.
        let output = fx.path("app/binaries/anysync-backend-x86_64-acme-board.exe");
        let prebuilt = fx.write("prebuilt/anysync-backend.exe", pe(0x8664, 0x0022));
        make_executable(&prebuilt, true);
        fx.env.insert(PREBUILT_ENV, prebuilt.into_os_string());
        let built = fx.run(Builder::new().go_dir(&go_dir)).expect("copied");
        assert_eq!(built.path, output);
        // Without the cfg the triple is parsed, and this one names no operating system.
        fx.env.remove(PREBUILT_ENV);
        fx.set_target("x86_64-acme-board", None);
        let err = fx.run(Builder::new().go_dir(&go_dir)).expect_err("no os");
        assert!(err.to_string().contains("operating system"), "{err}");
        // Builder::target naming another target than cargo's ignores cargo's cfg.
        fx.set_target(
            "x86_64-pc-windows-msvc",
            Some(cargo_cfg("aarch64-linux-android")),
        );
        let err = fx
            .run(Builder::new().target("aarch64-apple-ios").go_dir(&go_dir))
            .expect_err("ios");
        assert!(err.to_string().contains("GOOS=ios GOARCH=arm64"), "{err}");
    }

    #[test]
    fn go_settings_that_change_the_output_rerun_the_build() {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("skipped: no `go` on PATH");
            return;
        }
        let fx = Fixture::new();
        let go_dir = fx.go_module();
        let built = fx.run(Builder::new().go_dir(&go_dir)).expect("builds");
        for var in ["GOFLAGS", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GOROOT"] {
            let directive = format!("cargo:rerun-if-env-changed={var}");
            assert!(built.directives.contains(&directive), "{directive} missing");
        }
        assert!(
            !built.directives.iter().any(|d| d.ends_with("=CGO_ENABLED")),
            "CGO_ENABLED is always 0, not watched"
        );
        let goroot = Command::new("go")
            .args(["env", "GOROOT"])
            .output()
            .expect("go env");
        let version = Path::new(String::from_utf8_lossy(&goroot.stdout).trim()).join("VERSION");
        assert!(
            built
                .directives
                .contains(&format!("cargo:rerun-if-changed={}", version.display())),
            "the toolchain's VERSION file is watched: {:?}",
            built.directives
        );
    }

    /// A thin 64-bit Mach-O header for `cputype`/`cpusubtype`, padded with `fill`.
    fn thin_macho(cputype: u32, cpusubtype: u32, len: usize, fill: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [0xfeed_facf_u32, cputype, cpusubtype] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.resize(len, fill);
        bytes
    }

    /// The fat header's slices: (cputype, cpusubtype, offset, size, align).
    fn fat_arches(fat: &[u8]) -> Vec<[u32; 5]> {
        let be = |at: usize| u32::from_be_bytes(fat[at..at + 4].try_into().expect("4 bytes"));
        assert_eq!(be(0), 0xcafe_babe, "FAT_MAGIC, big-endian");
        (0..be(4) as usize)
            .map(|i| {
                let at = 8 + 20 * i;
                [be(at), be(at + 4), be(at + 8), be(at + 12), be(at + 16)]
            })
            .collect()
    }

    #[test]
    fn a_universal_file_holds_each_slice_aligned_to_16_kib() {
        let x86 = thin_macho(0x0100_0007, 3, 20_000, 0xaa);
        let arm = thin_macho(0x0100_000c, 0, 5_000, 0xbb);
        let fat = universal_macho(&[x86.clone(), arm.clone()]).expect("joins");
        let arches = fat_arches(&fat);
        assert_eq!(
            arches,
            [
                [0x0100_0007, 3, 16_384, 20_000, 14],
                [0x0100_000c, 0, 49_152, 5_000, 14]
            ]
        );
        for ([.., offset, size, _], slice) in arches.iter().zip([&x86, &arm]) {
            let (offset, size) = (*offset as usize, *size as usize);
            assert_eq!(&fat[offset..offset + size], &slice[..]);
        }
        assert_eq!(fat.len(), 49_152 + 5_000);
        assert!(universal_macho(&[b"\x7fELF....".to_vec()]).is_err());
        assert!(
            universal_macho(&[arm.clone(), arm]).is_err(),
            "one slice per CPU"
        );
    }

    #[test]
    fn builds_a_universal_macos_sidecar_with_go_alone() {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("skipped: no `go` on PATH");
            return;
        }
        let mut fx = Fixture::new();
        let go_dir = fx.go_module();
        fx.set_target("aarch64-apple-darwin", None);
        let built = fx
            .run(Builder::new().go_dir(&go_dir).target(UNIVERSAL_MACOS))
            .expect("builds both architectures");
        assert_eq!(
            built.path,
            fx.path("app/binaries/anysync-backend-universal-apple-darwin")
        );
        let fat = fs::read(&built.path).expect("output");
        executable::check(&fat, &UNIVERSAL_SLICES, UNIVERSAL_MACOS).expect("a universal sidecar");
        let arches = fat_arches(&fat);
        assert_eq!(
            arches.iter().map(|a| a[0]).collect::<Vec<_>>(),
            [0x0100_0007, 0x0100_000c],
            "x86_64 and arm64"
        );
        for [_, _, offset, size, align] in arches {
            assert_eq!((offset % 16_384, align), (0, 14));
            let slice = &fat[offset as usize..(offset + size) as usize];
            assert_eq!(
                &slice[..4],
                &0xfeed_facf_u32.to_le_bytes(),
                "a Mach-O slice"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&built.path)
                .expect("meta")
                .permissions()
                .mode();
            assert_ne!(mode & 0o111, 0, "output is executable");
        }
        assert_eq!(
            leftovers(&fx.path("app/binaries")),
            1,
            "no staging files left"
        );
    }

    #[test]
    fn builds_an_android_arm64_executable_without_cgo() {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("skipped: no `go` on PATH");
            return;
        }
        let mut fx = Fixture::new();
        let go_dir = fx.go_module();
        let triple = "aarch64-linux-android";
        fx.set_target(triple, Some(cargo_cfg(triple)));
        let built = fx.run(Builder::new().go_dir(&go_dir)).expect("builds");
        let elf = fs::read(&built.path).expect("output");
        // ELF, e_machine 183 (AArch64), interpreter Android's linker.
        assert!(elf.starts_with(b"\x7fELF"));
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
        assert!(
            elf.windows(b"/system/bin/linker64".len())
                .any(|w| w == b"/system/bin/linker64"),
            "built for Android, not Linux"
        );
    }

    #[test]
    fn windows_sidecars_are_gui_programs_and_others_keep_their_flags() {
        for (triple, flags) in [
            ("x86_64-pc-windows-msvc", "-s -w -H=windowsgui"),
            ("aarch64-pc-windows-msvc", "-s -w -H=windowsgui"),
            ("i686-pc-windows-msvc", "-s -w -H=windowsgui"),
            ("x86_64-unknown-linux-gnu", "-s -w"),
            ("aarch64-apple-darwin", "-s -w"),
            ("aarch64-linux-android", "-s -w"),
        ] {
            assert_eq!(ldflags(&target(triple)), flags, "{triple}");
        }
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("skipped the build: no `go` on PATH");
            return;
        }
        let mut fx = Fixture::new();
        let go_dir = fx.go_module();
        for (triple, subsystem) in [("x86_64-pc-windows-msvc", 2), ("i686-pc-windows-msvc", 2)] {
            fx.env.insert("TARGET", triple.into());
            let built = fx.run(Builder::new().go_dir(&go_dir)).expect("builds");
            let pe = fs::read(&built.path).expect("output");
            // The optional header's Subsystem (2: Windows GUI, 3: console) is 68 bytes into it, for
            // PE32 and PE32+ alike; it follows the "PE\0\0" signature and the 20-byte COFF header.
            let at = usize::try_from(u32::from_le_bytes([pe[0x3c], pe[0x3d], pe[0x3e], pe[0x3f]]))
                .expect("offset")
                + 4
                + 20
                + 68;
            assert_eq!(
                u16::from_le_bytes([pe[at], pe[at + 1]]),
                subsystem,
                "{triple}: a console program would open a console window"
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

        /// Cargo's `TARGET` and, when given, its `CARGO_CFG_TARGET_*` for it.
        fn set_target(&mut self, triple: &str, cfg: Option<TargetCfg>) {
            self.env.insert("TARGET", triple.into());
            for key in [
                "CARGO_CFG_TARGET_OS",
                "CARGO_CFG_TARGET_ARCH",
                "CARGO_CFG_TARGET_ENV",
                "CARGO_CFG_TARGET_ABI",
                "CARGO_CFG_TARGET_ENDIAN",
                "CARGO_CFG_TARGET_FEATURE",
            ] {
                self.env.remove(key);
            }
            if let Some(cfg) = cfg {
                for (key, value) in [
                    ("CARGO_CFG_TARGET_OS", cfg.os),
                    ("CARGO_CFG_TARGET_ARCH", cfg.arch),
                    ("CARGO_CFG_TARGET_ENV", cfg.env),
                    ("CARGO_CFG_TARGET_ABI", cfg.abi),
                    ("CARGO_CFG_TARGET_ENDIAN", cfg.endian),
                    ("CARGO_CFG_TARGET_FEATURE", cfg.features),
                ] {
                    self.env.insert(key, value.into());
                }
            }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
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
        let prebuilt = fx.write("prebuilt/anysync-backend", elf(62, true, false, 3));
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
    fn anysync_sidecar_must_be_built_for_the_target() {
        // The fixture's target: x86_64-unknown-linux-gnu.
        let mut fx = Fixture::new();
        let target = "x86_64-unknown-linux-gnu";
        for (name, bytes, says) in [
            (
                "text",
                b"hi\n".to_vec(),
                "is a 3-byte text file, not an executable (it starts with \"hi\"); \
                 x86_64-unknown-linux-gnu needs an ELF executable for amd64",
            ),
            (
                "script",
                b"#!/bin/sh\nexec real-backend\n".to_vec(),
                "is a script (#!/bin/sh); x86_64-unknown-linux-gnu needs an ELF executable for amd64",
            ),
            (
                "arm64",
                elf(183, true, false, 3),
                "is an ELF executable for arm64; x86_64-unknown-linux-gnu needs an ELF executable \
                 for amd64",
            ),
            (
                "windows",
                pe(0x8664, 0x0022),
                "is a PE executable for amd64; x86_64-unknown-linux-gnu needs an ELF executable \
                 for amd64",
            ),
        ] {
            let prebuilt = fx.write(&format!("prebuilt/{name}"), bytes);
            make_executable(&prebuilt, true);
            fx.env.insert(PREBUILT_ENV, prebuilt.clone().into_os_string());
            let err = fx
                .run(Builder::new().go_binary(fx.path("no-such-go")))
                .expect_err(name);
            assert!(matches!(err, Error::BadPrebuilt { .. }), "{name}: {err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "ANYSYNC_SIDECAR={} {says}; point it at the anysync-backend executable built \
                     for this target, or unset it to build the sidecar with Go",
                    prebuilt.display()
                ),
                "{name}"
            );
            assert!(
                !fx.path("app/binaries").join(format!("anysync-backend-{target}")).exists(),
                "{name}: nothing copied"
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
            // The header check an ANYSYNC_SIDECAR file must pass reads Go's real output right.
            executable::check(&bytes, &[target(triple)], triple)
                .unwrap_or_else(|e| panic!("{triple}: {e}"));
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
                && message.contains("\"-s -w -H=windowsgui\""),
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
