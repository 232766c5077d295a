//! What an executable's header says it is built for: its format (ELF, Mach-O, PE) and CPU, by
//! Go's `GOARCH` names. The helper checks an `ANYSYNC_SIDECAR` file with it before copying it, so
//! that a file for another target (or not a program at all) fails the build with a message saying
//! what it is, instead of being bundled and failing on the user's machine.
//!
//! Only the first [`HEADER_LEN`] bytes are read: enough for every header below and for the slice
//! table of a universal Mach-O file.

use std::fmt;

use crate::GoTarget;

/// How many bytes of a file [`inspect`] needs at most.
pub const HEADER_LEN: usize = 4096;

/// An executable file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Linux, Android, the BSDs, illumos: the Executable and Linkable Format.
    Elf,
    /// macOS and iOS, thin or universal.
    MachO,
    /// Windows: Portable Executable.
    Pe,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Elf => "ELF",
            Self::MachO => "Mach-O",
            Self::Pe => "PE",
        })
    }
}

impl Format {
    /// "an ELF", "a Mach-O", "a PE".
    fn with_article(self) -> &'static str {
        match self {
            Self::Elf => "an ELF",
            Self::MachO => "a Mach-O",
            Self::Pe => "a PE",
        }
    }
}

/// What a header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format.
    pub format: Format,
    /// The CPU architectures by `GOARCH` name: one, or one per slice of a universal Mach-O file. A
    /// CPU this module does not know is named by its number (`ELF machine 0x2`).
    pub arches: Vec<String>,
    /// Whether the header marks a program one can run, not a library or an object file.
    pub executable: bool,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.executable {
            "executable"
        } else {
            "library or object file"
        };
        write!(
            f,
            "{} {kind} for {}",
            self.format.with_article(),
            self.arches.join(" + ")
        )
    }
}

/// The format a Go target's executables have.
pub fn format_of(target: &GoTarget) -> Format {
    match target.goos {
        "windows" => Format::Pe,
        "darwin" | "ios" => Format::MachO,
        _ => Format::Elf,
    }
}

/// Reads the format and CPU from the start of a file (at least its first [`HEADER_LEN`] bytes, or
/// all of a shorter file). The error says what the bytes are instead, for a message.
pub fn inspect(bytes: &[u8]) -> Result<Header, String> {
    let u16_at = |at: usize, big: bool| {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize, big: bool| {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    // ELF: class (1: 32-bit, 2: 64-bit) and byte order (1: little, 2: big) at 4 and 5, e_type at
    // 16 (2: EXEC, 3: DYN, which position-independent executables are), e_machine at 18.
    if bytes.starts_with(b"\x7fELF") {
        let (class64, big) = (bytes.get(4) == Some(&2), bytes.get(5) == Some(&2));
        let (Some(kind), Some(machine)) = (u16_at(16, big), u16_at(18, big)) else {
            return Err("a truncated ELF file".into());
        };
        let arch = match (machine, class64, big) {
            (62, ..) => "amd64",
            (3, ..) => "386",
            (183, ..) => "arm64",
            (40, ..) => "arm",
            (243, ..) => "riscv64",
            (21, _, true) => "ppc64",
            (21, _, false) => "ppc64le",
            (22, ..) => "s390x",
            (258, ..) => "loong64",
            (8, true, true) => "mips64",
            (8, true, false) => "mips64le",
            (8, false, true) => "mips",
            (8, false, false) => "mipsle",
            _ => {
                return Ok(header(
                    Format::Elf,
                    format!("ELF machine {machine:#x}"),
                    false,
                ))
            }
        };
        return Ok(header(Format::Elf, arch.into(), kind == 2 || kind == 3));
    }
    // PE: "MZ", the PE header's offset at 0x3c, there "PE\0\0", the COFF machine at +4 and the
    // characteristics at +22 (0x0002: an executable image, 0x2000: a DLL).
    if bytes.starts_with(b"MZ") {
        let coff = u32_at(0x3c, false).and_then(|at| usize::try_from(at).ok());
        let fields = coff
            .filter(|&at| bytes.get(at..at + 4) == Some(b"PE\0\0"))
            .and_then(|at| Some((u16_at(at + 4, false)?, u16_at(at + 22, false)?)));
        let Some((machine, characteristics)) = fields else {
            return Err("an MS-DOS file without a PE header".into());
        };
        let arch = match machine {
            0x8664 => "amd64".to_owned(),
            0x014c => "386".to_owned(),
            0xaa64 => "arm64".to_owned(),
            0x01c4 => "arm".to_owned(),
            other => format!("PE machine {other:#x}"),
        };
        let executable = characteristics & 0x0002 != 0 && characteristics & 0x2000 == 0;
        return Ok(header(Format::Pe, arch, executable));
    }
    // Mach-O, thin: MH_MAGIC(_64) in the file's byte order, cputype at 4, filetype at 12 (2:
    // MH_EXECUTE). Universal: FAT_MAGIC, big-endian, the slice count, then 20 bytes per slice
    // starting with its cputype. Java class files share FAT_MAGIC; their "count" is a version above
    // 40, so a plausible count tells them apart, as the tools that read both do.
    for big in [false, true] {
        if let Some(0xfeed_face | 0xfeed_facf) = u32_at(0, big) {
            let (Some(cpu), Some(kind)) = (u32_at(4, big), u32_at(12, big)) else {
                return Err("a truncated Mach-O file".into());
            };
            return Ok(header(Format::MachO, macho_arch(cpu), kind == 2));
        }
    }
    if u32_at(0, true) == Some(0xcafe_babe) {
        let count = u32_at(4, true).unwrap_or(0) as usize;
        if (1..=20).contains(&count) {
            let arches: Option<Vec<String>> = (0..count)
                .map(|i| u32_at(8 + 20 * i, true).map(macho_arch))
                .collect();
            return match arches {
                Some(arches) => Ok(Header {
                    format: Format::MachO,
                    arches,
                    executable: true,
                }),
                None => Err("a truncated universal Mach-O file".into()),
            };
        }
    }
    Err(describe_other(bytes))
}

fn header(format: Format, arch: String, executable: bool) -> Header {
    Header {
        format,
        arches: vec![arch],
        executable,
    }
}

fn macho_arch(cpu: u32) -> String {
    match cpu {
        0x0100_0007 => "amd64".into(),
        0x0000_0007 => "386".into(),
        0x0100_000c => "arm64".into(),
        0x0000_000c => "arm".into(),
        other => format!("Mach-O CPU {other:#x}"),
    }
}

/// What a file that is no executable looks like: a script names its interpreter, text is quoted,
/// anything else shown in hex.
fn describe_other(bytes: &[u8]) -> String {
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let shown = &first_line[..first_line.len().min(40)];
    let text = std::str::from_utf8(shown)
        .ok()
        .filter(|s| s.chars().all(|c| !c.is_control() || c == '\t'));
    match text {
        _ if bytes.is_empty() => "an empty file".into(),
        Some(line) if line.starts_with("#!") => format!("a script ({line})"),
        Some(line) => format!(
            "a {}-byte text file, not an executable (it starts with {line:?})",
            bytes.len()
        ),
        None => {
            let hex: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("not an ELF, Mach-O or PE executable (it starts with {hex})")
        }
    }
}

/// Checks that the start of a file is an executable for every one of `targets` (one target, or
/// the slices of a universal macOS file); the error says what the file is and what `triple`
/// (the Rust target, for the message) needs.
pub fn check(bytes: &[u8], targets: &[GoTarget], triple: &str) -> Result<Header, String> {
    let Some(first) = targets.first() else {
        return Err("no target to check against".into());
    };
    let want_format = format_of(first);
    let want: Vec<&str> = targets.iter().map(|t| t.goarch).collect();
    let needed = format!(
        "{} executable for {}",
        want_format.with_article(),
        want.join(" + ")
    );
    let found = inspect(bytes).map_err(|what| format!("is {what}; {triple} needs {needed}"))?;
    let has_all = want
        .iter()
        .all(|arch| found.arches.iter().any(|a| a == arch));
    if found.format != want_format || !has_all || !found.executable {
        return Err(format!("is {found}; {triple} needs {needed}"));
    }
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{universal_macho, GoTarget};

    /// An ELF header: `class64`, big-endian or not, e_type, e_machine.
    pub(crate) fn elf(machine: u16, class64: bool, big: bool, kind: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = if class64 { 2 } else { 1 };
        b[5] = if big { 2 } else { 1 };
        let put = |b: &mut Vec<u8>, at: usize, v: u16| {
            let bytes = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            b[at..at + 2].copy_from_slice(&bytes);
        };
        put(&mut b, 16, kind);
        put(&mut b, 18, machine);
        b
    }

    pub(crate) fn pe(machine: u16, characteristics: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x100];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        b[0x96..0x98].copy_from_slice(&characteristics.to_le_bytes());
        b
    }

    pub(crate) fn macho(cpu: u32, filetype: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for word in [0xfeed_facf, cpu, 0, filetype] {
            b.extend_from_slice(&u32::to_le_bytes(word));
        }
        b.resize(64, 0);
        b
    }

    fn go(triple: &str) -> GoTarget {
        GoTarget::from_rust_triple(triple).unwrap_or_else(|e| panic!("{triple}: {e}"))
    }

    #[test]
    fn reads_format_and_cpu_of_each_kind_of_executable() {
        let cases: [(Vec<u8>, Format, &str, bool); 12] = [
            (elf(62, true, false, 3), Format::Elf, "amd64", true),
            (elf(62, true, false, 2), Format::Elf, "amd64", true),
            (elf(183, true, false, 2), Format::Elf, "arm64", true),
            (elf(40, false, false, 2), Format::Elf, "arm", true),
            (elf(3, false, false, 2), Format::Elf, "386", true),
            (elf(21, true, true, 2), Format::Elf, "ppc64", true),
            (elf(8, false, false, 2), Format::Elf, "mipsle", true),
            (elf(62, true, false, 1), Format::Elf, "amd64", false),
            (pe(0x8664, 0x0022), Format::Pe, "amd64", true),
            (pe(0xaa64, 0x2022), Format::Pe, "arm64", false),
            (macho(0x0100_000c, 2), Format::MachO, "arm64", true),
            (macho(0x0100_0007, 6), Format::MachO, "amd64", false),
        ];
        for (bytes, format, arch, executable) in cases {
            assert_eq!(
                inspect(&bytes),
                Ok(Header {
                    format,
                    arches: vec![arch.to_owned()],
                    executable
                }),
                "{format} {arch}"
            );
        }
        let fat = universal_macho(&[macho(0x0100_0007, 2), macho(0x0100_000c, 2)]).expect("fat");
        assert_eq!(
            inspect(&fat).map(|h| h.arches),
            Ok(vec!["amd64".to_owned(), "arm64".to_owned()])
        );
    }

    #[test]
    fn says_what_a_file_that_is_no_executable_is() {
        for (bytes, says) in [
            (
                &b"hi\n"[..],
                "a 3-byte text file, not an executable (it starts with \"hi\")",
            ),
            (b"#!/bin/sh\necho hi\n", "a script (#!/bin/sh)"),
            (b"", "an empty file"),
            (
                b"\x00\x01\x02\x03\xff",
                "not an ELF, Mach-O or PE executable (it starts with 00010203ff)",
            ),
            (b"\x7fELF\x02", "a truncated ELF file"),
            (b"MZ\x90\x00", "an MS-DOS file without a PE header"),
            // A Java class file (FAT_MAGIC, then version 52) is no universal Mach-O file.
            (
                b"\xca\xfe\xba\xbe\x00\x00\x00\x34",
                "not an ELF, Mach-O or PE executable (it starts with cafebabe00000034)",
            ),
        ] {
            assert_eq!(inspect(bytes), Err(says.to_owned()));
        }
    }

    #[test]
    fn checks_the_format_and_cpu_the_target_needs() {
        let linux = [go("x86_64-unknown-linux-gnu")];
        assert!(check(&elf(62, true, false, 3), &linux, "the target").is_ok());
        for (bytes, message) in [
            (
                elf(183, true, false, 3),
                "is an ELF executable for arm64; the target needs an ELF executable for amd64",
            ),
            (
                pe(0x8664, 0x0022),
                "is a PE executable for amd64; the target needs an ELF executable for amd64",
            ),
            (
                elf(62, true, false, 1),
                "is an ELF library or object file for amd64; the target needs an ELF executable for amd64",
            ),
            (
                b"hi\n".to_vec(),
                "is a 3-byte text file, not an executable (it starts with \"hi\"); the target needs an ELF executable for amd64",
            ),
        ] {
            assert_eq!(check(&bytes, &linux, "the target"), Err(message.to_owned()));
        }
        assert!(check(&pe(0xaa64, 0x0022), &[go("aarch64-pc-windows-msvc")], "t").is_ok());
        assert!(check(&macho(0x0100_000c, 2), &[go("aarch64-apple-darwin")], "t").is_ok());
        assert!(check(
            &elf(183, true, false, 3),
            &[go("aarch64-linux-android")],
            "t"
        )
        .is_ok());
        let fat = universal_macho(&[macho(0x0100_0007, 2), macho(0x0100_000c, 2)]).expect("fat");
        let universal = [go("x86_64-apple-darwin"), go("aarch64-apple-darwin")];
        assert!(check(&fat, &universal, "t").is_ok());
        assert!(
            check(&fat, &[go("aarch64-apple-darwin")], "t").is_ok(),
            "a universal file serves one of its CPUs"
        );
        assert_eq!(
            check(&macho(0x0100_000c, 2), &universal, "the target"),
            Err("is a Mach-O executable for arm64; the target needs a Mach-O executable for amd64 + arm64".to_owned())
        );
    }
}
