/**
 * `npm run gen`: regenerates every stub from the `.proto` source of truth in go-backend/api/proto.
 * `npm run gen:check`: the same, then fails when the committed output differs (stale stubs).
 *
 * Tool versions are pinned here; protoc itself comes from Debian's protobuf-compiler (3.21.x), whose
 * version is written into the Go stubs' header, so a different protoc shows up as a diff too.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { capture, goInstallPinned, repoRoot, run } from "./lib.ts";

const PROTOC_GEN_GO = "v1.36.11";
const PROTOC_GEN_GO_GRPC = "v1.6.0";

const protoRoot = "go-backend/api/proto";

/** Every generated path, relative to the repo root; `--check` compares exactly these. */
const generatedPaths = [`${protoRoot}/anysync/v1`, "src/generated", "guest-js/src/generated"] as const;

function protoFiles(): string[] {
  const dir = path.join(repoRoot, protoRoot, "anysync/v1");
  return readdirSync(dir)
    .filter((name) => name.endsWith(".proto"))
    .sort()
    .map((name) => `anysync/v1/${name}`);
}

function generateGo(): void {
  const genGo = goInstallPinned("protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go", PROTOC_GEN_GO);
  const genGoGrpc = goInstallPinned(
    "protoc-gen-go-grpc",
    "google.golang.org/grpc/cmd/protoc-gen-go-grpc",
    PROTOC_GEN_GO_GRPC,
  );
  run("protoc", [
    `--plugin=protoc-gen-go=${genGo}`,
    `--plugin=protoc-gen-go-grpc=${genGoGrpc}`,
    `--proto_path=${protoRoot}`,
    `--go_out=${protoRoot}`,
    "--go_opt=paths=source_relative",
    `--go-grpc_out=${protoRoot}`,
    "--go-grpc_opt=paths=source_relative",
    ...protoFiles(),
  ]);
}

function generateRust(): void {
  run("cargo", ["run", "--quiet", "--locked", "-p", "anysync-codegen"]);
  run("rustfmt", ["--edition", "2021", "src/generated/anysync.v1.rs"]);
}

function generateTypeScript(): void {
  // The guest-js package joins with the TypeScript API; until then there is nothing to emit.
  if (!existsSync(path.join(repoRoot, "guest-js", "package.json"))) return;
  run("npm", ["run", "--silent", "--workspace", "guest-js", "gen"]);
}

function staleFiles(): string {
  return capture("git", ["status", "--porcelain", "--untracked-files=all", "--", ...generatedPaths]);
}

const check = process.argv.includes("--check");
const before = check ? staleFiles() : "";
if (check && before !== "") {
  console.error(`gen:check: generated paths have uncommitted changes already:\n${before}`);
  process.exit(1);
}
generateGo();
generateRust();
generateTypeScript();
if (check) {
  const after = staleFiles();
  if (after !== "") {
    console.error(`gen:check: the committed generated code is stale; run \`npm run gen\` and commit:\n${after}`);
    run("git", ["--no-pager", "diff", "--stat", "--", ...generatedPaths]);
    process.exit(1);
  }
  console.log("gen:check: generated code is up to date");
}
