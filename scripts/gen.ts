/**
 * `npm run gen`: regenerates every stub from the `.proto` trees (the modules of the buf workspace,
 * `buf.yaml` at the repository root). `npm run gen:check`: the same, then fails when that changed
 * any generated file (in CI's fresh clone: the committed output is stale).
 *
 * Per proto root, every `.proto` anywhere under it (no list to edit):
 * - Go: protoc-gen-go + protoc-gen-go-grpc, `paths=source_relative`, next to each `.proto`;
 * - TypeScript: protoc-gen-es v2 (`target=ts`, `import_extension=js`) into the root's `ts` folder;
 * - Rust (the plugin's root only): `cargo run -p anysync-codegen` + rustfmt into src/generated.
 *
 * `buf generate` drives the Go and TypeScript plugins, all local (no remote plugins): the Go ones
 * installed at pinned versions into `.tools/bin`, protoc-gen-es from the workspace's node_modules
 * (its version is pinned by package-lock.json and written into every file's header). Old output is
 * removed first, so a deleted `.proto` leaves nothing stale behind. Output is deterministic.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { goInstallPinned, repoRoot, run } from "./lib.ts";

const PROTOC_GEN_GO = "v1.36.11";
const PROTOC_GEN_GO_GRPC = "v1.6.0";

/** One tree of `.proto` files: a module of buf.yaml, and where its TypeScript goes. */
interface ProtoRoot {
  /** The module's folder, relative to the repository root; package folders start below it. */
  readonly dir: string;
  /** Where the protobuf-es output goes (emptied first). */
  readonly ts: string;
  /** Whether Go stubs are generated too (next to the `.proto` files). */
  readonly go: boolean;
}

const roots: readonly ProtoRoot[] = [
  // The plugin's services: the package's generated descriptors and types.
  { dir: "go-backend/api/proto", ts: "guest-js/src/gen", go: true },
  // The example app's own service, generated the way an app author's would be.
  { dir: "examples/tauri-app/backend/proto", ts: "examples/tauri-app/src/gen", go: true },
  // A service of every method kind for guest-js's transport tests; no backend serves it.
  { dir: "guest-js/test/proto", ts: "guest-js/test/gen", go: false },
];

/** The Rust stubs' folder (the plugin's root only). */
const rustOut = "src/generated";

/** The module paths buf.yaml declares; they must be exactly the roots above. */
function bufModules(): string[] {
  const text = readFileSync(path.join(repoRoot, "buf.yaml"), "utf8");
  return [...text.matchAll(/^\s*-\s*path:\s*(\S+)\s*$/gm)].map((match) => match[1] ?? "").sort();
}

/** Every file under `dir` (relative to the repository root) whose name passes `keep`, sorted. */
function filesUnder(dir: string, keep: (name: string) => boolean = () => true): string[] {
  const absolute = path.join(repoRoot, dir);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute, { recursive: true, encoding: "utf8" })
    .filter((name) => keep(path.basename(name)) && statSync(path.join(absolute, name)).isFile())
    .map((name) => path.posix.join(dir, name.split(path.sep).join("/")))
    .sort();
}

const isGoStub = (name: string): boolean => name.endsWith(".pb.go");

/** Every generated file there is now: the snapshot `--check` compares. */
function generatedFiles(): string[] {
  return [
    ...roots.flatMap((root) => [...(root.go ? filesUnder(root.dir, isGoStub) : []), ...filesUnder(root.ts)]),
    ...filesUnder(rustOut),
  ];
}

function snapshot(): Map<string, string> {
  return new Map(
    generatedFiles().map((file) => [file, createHash("sha256").update(readFileSync(path.join(repoRoot, file))).digest("hex")]),
  );
}

/** The local protoc-gen-es of this workspace, wherever npm placed it. */
function protocGenEs(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("@bufbuild/protoc-gen-es/package.json")), "bin", "protoc-gen-es");
}

/** The workspace's buf binary (the `@bufbuild/buf` package ships it). */
function buf(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("@bufbuild/buf/package.json")), "bin", "buf");
}

function generateGoAndTypeScript(): void {
  const genGo = goInstallPinned("protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go", PROTOC_GEN_GO);
  const genGoGrpc = goInstallPinned(
    "protoc-gen-go-grpc",
    "google.golang.org/grpc/cmd/protoc-gen-go-grpc",
    PROTOC_GEN_GO_GRPC,
  );
  const genEs = protocGenEs();
  for (const root of roots) {
    if (filesUnder(root.dir, (name) => name.endsWith(".proto")).length === 0) {
      throw new Error(`gen: no .proto files under ${root.dir}`);
    }
    for (const stale of filesUnder(root.dir, isGoStub)) rmSync(path.join(repoRoot, stale));
    rmSync(path.join(repoRoot, root.ts), { recursive: true, force: true });
    const go = [
      { local: genGo, out: root.dir, opt: ["paths=source_relative"] },
      { local: genGoGrpc, out: root.dir, opt: ["paths=source_relative"] },
    ];
    const template = {
      version: "v2",
      plugins: [
        ...(root.go ? go : []),
        { local: [process.execPath, genEs], out: root.ts, opt: ["target=ts", "import_extension=js"] },
      ],
    };
    run(buf(), ["generate", root.dir, "--template", JSON.stringify(template)]);
  }
}

function generateRust(): void {
  run("cargo", ["run", "--quiet", "--locked", "-p", "anysync-codegen"]);
  run("rustfmt", ["--edition", "2021", `${rustOut}/anysync.v1.rs`]);
}

const modules = bufModules();
const expected = roots.map((root) => root.dir).sort();
if (modules.join("\n") !== expected.join("\n")) {
  throw new Error(`gen: buf.yaml's modules (${modules.join(", ")}) differ from scripts/gen.ts's roots (${expected.join(", ")})`);
}

const check = process.argv.includes("--check");
const before = snapshot();
generateGoAndTypeScript();
generateRust();
if (check) {
  const after = snapshot();
  const changed = [...new Set([...before.keys(), ...after.keys()])]
    .sort()
    .flatMap((file) => {
      const [was, is] = [before.get(file), after.get(file)];
      if (was === is) return [];
      return [`  ${was === undefined ? "added" : is === undefined ? "removed" : "changed"}: ${file}`];
    });
  if (changed.length > 0) {
    console.error(`gen:check: the generated code was stale; \`npm run gen\` changed it (now regenerated, commit it):\n${changed.join("\n")}`);
    process.exit(1);
  }
  console.log(`gen:check: ${String(after.size)} generated files are up to date`);
}
