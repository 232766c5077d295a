//! Writes the Rust gRPC client stubs for the plugin from the `.proto` source of truth.
//!
//! Run through `npm run gen` (which also regenerates the Go and TypeScript stubs), never from
//! `build.rs`: the output is committed so that building the plugin needs neither protoc nor this
//! crate, and CI regenerates it to prove it is not stale.
//!
//! Every `.proto` under the tree is compiled, so a new file needs no edit here. The generated
//! messages are also the plugin's IPC types (the typed `ping`/`health` commands return them), so they
//! get serde derives with the JSON shape the front end has always received: camelCase field names,
//! 64-bit integers as numbers, and enum fields as their value *names* (`"SERVING_STATUS_SERVING"`),
//! not prost's `i32`. Nothing is mirrored by hand in `src/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use prost::Message as _;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};

fn main() -> ExitCode {
    // The repository the command runs in (`npm run gen` runs it from the root), not the one it was
    // compiled in: a copy of the repository may reuse this binary from a shared target dir.
    let root = match std::env::current_dir() {
        Ok(dir) if dir.join("go-backend/api/proto").is_dir() => dir,
        Ok(dir) => {
            eprintln!(
                "anysync-codegen: run it from the repository root (no go-backend/api/proto in {})",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("anysync-codegen: cannot read the current directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    match generate(
        &root.join("go-backend/api/proto"),
        &root.join("src/generated"),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("anysync-codegen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn generate(proto_root: &Path, out_dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let mut protos = Vec::new();
    find_protos(proto_root, &mut protos)?;
    protos.sort();
    let fds = descriptors(proto_root, &protos)?;

    let mut builder = tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .out_dir(out_dir)
        .message_attribute(
            ".",
            "#[derive(::serde::Serialize, ::serde::Deserialize)]\n#[serde(rename_all = \"camelCase\", default)]",
        );
    // Only the files of this tree (not their imports) are generated, so only their enum fields.
    let mut attributes = Vec::new();
    let mut enums_by_package: Vec<(String, Vec<String>)> = Vec::new();
    for file in fds.file.iter().filter(|f| {
        protos
            .iter()
            .any(|p| p.strip_prefix(proto_root).ok() == Some(Path::new(f.name())))
    }) {
        let package = file.package();
        let mut enums: Vec<String> = file
            .enum_type
            .iter()
            .map(|e| rust_type_path(package, &format!(".{package}.{}", e.name())))
            .collect();
        for message in &file.message_type {
            enum_fields(
                &format!(".{package}"),
                package,
                message,
                &mut |field, rust_enum| {
                    attributes.push((
                        field,
                        format!(
                            "#[serde(with = \"crate::proto_serde::Enumeration::<{rust_enum}>\")]"
                        ),
                    ));
                },
            );
            nested_enums(&format!(".{package}"), package, message, &mut enums);
        }
        match enums_by_package.iter_mut().find(|(p, _)| p == package) {
            Some((_, known)) => known.extend(enums),
            None => enums_by_package.push((package.to_owned(), enums)),
        }
    }
    for (field, attribute) in attributes {
        builder = builder.field_attribute(field, attribute);
    }
    builder
        .compile_fds(fds)
        .map_err(|e| format!("code generation failed: {e}"))?;
    for (package, enums) in enums_by_package {
        append_enum_names(&out_dir.join(format!("{package}.rs")), &enums)?;
    }
    Ok(())
}

/// prost gives each enum `as_str_name`/`from_str_name` as inherent methods; serde's `with` needs a
/// trait to reach them generically, so each enum gets an impl of `crate::proto_serde::ProtoEnum`.
fn append_enum_names(file: &Path, enums: &[String]) -> Result<(), String> {
    if enums.is_empty() {
        return Ok(());
    }
    let mut text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    // prost-build leaves a file alone when its output did not change, so an earlier appendix may
    // still be there: replace it rather than add a second one.
    const MARKER: &str =
        "// Added by anysync-codegen: enum value names for serde (src/proto_serde.rs).\n";
    if let Some(at) = text.find(MARKER) {
        text.truncate(at);
    }
    text.push_str(MARKER);
    for rust_enum in enums {
        text.push_str(&format!(
            "impl crate::proto_serde::ProtoEnum for {rust_enum} {{ fn name(&self) -> &'static str {{ self.as_str_name() }} fn from_name(name: &str) -> ::core::option::Option<Self> {{ Self::from_str_name(name) }} }}\n"
        ));
    }
    std::fs::write(file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

fn nested_enums(scope: &str, package: &str, message: &DescriptorProto, out: &mut Vec<String>) {
    let path = format!("{scope}.{}", message.name());
    for nested in &message.enum_type {
        out.push(rust_type_path(
            package,
            &format!("{path}.{}", nested.name()),
        ));
    }
    for nested in &message.nested_type {
        nested_enums(&path, package, nested, out);
    }
}

/// Calls `found(proto_field_path, rust_enum_path)` for every enum-typed field of `message` and its
/// nested messages. The Rust path is relative to the crate's `proto` module, where the stubs live.
fn enum_fields(
    scope: &str,
    package: &str,
    message: &DescriptorProto,
    found: &mut dyn FnMut(String, String),
) {
    let path = format!("{scope}.{}", message.name());
    for field in &message.field {
        if field.r#type() == Type::Enum {
            found(
                format!("{path}.{}", field.name()),
                rust_type_path(package, field.type_name()),
            );
        }
    }
    for nested in &message.nested_type {
        enum_fields(&path, package, nested, found);
    }
}

/// `.anysync.v1.HealthCheckResponse.ServingStatus` -> `crate::proto::health_check_response::ServingStatus`:
/// prost puts a message's nested types in a snake_case module named after the message.
fn rust_type_path(package: &str, type_name: &str) -> String {
    let relative = type_name
        .strip_prefix(&format!(".{package}."))
        .unwrap_or(type_name.trim_start_matches('.'));
    let mut parts: Vec<String> = relative.split('.').map(str::to_owned).collect();
    let last = parts.pop().unwrap_or_default();
    let modules: Vec<String> = parts.iter().map(|p| snake_case(p)).collect();
    let mut path = vec!["crate".to_owned(), "proto".to_owned()];
    path.extend(modules);
    path.push(last);
    path.join("::")
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn find_protos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            find_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// The descriptors of `protos`, from protoc (the same compiler `npm run gen` uses for Go).
fn descriptors(proto_root: &Path, protos: &[PathBuf]) -> Result<FileDescriptorSet, String> {
    let out = std::env::temp_dir().join(format!("anysync-codegen-{}.pb", std::process::id()));
    let status = std::process::Command::new("protoc")
        .arg(format!("--proto_path={}", proto_root.display()))
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg("--include_imports")
        .arg("--include_source_info")
        .args(protos)
        .status()
        .map_err(|e| format!("cannot run protoc: {e} (is protobuf-compiler installed?)"))?;
    if !status.success() {
        return Err(format!("protoc failed ({status})"));
    }
    let bytes = std::fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display()));
    let _ = std::fs::remove_file(&out);
    FileDescriptorSet::decode(bytes?.as_slice())
        .map_err(|e| format!("protoc wrote an unreadable descriptor set: {e}"))
}
