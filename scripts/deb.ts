/**
 * `npm run test:deb`: bundles the example app as a Debian package and smoke-tests it installed.
 *
 * 1. `tauri build --debug --bundles deb` (the debug build `npm run build` makes is reused; bundling
 *    a .deb downloads nothing);
 * 2. checks the package: its control fields (name, version, WebKitGTK dependency) and its files, above
 *    all the sidecar at `usr/bin/anysync-backend`, beside the app executable where the plugin looks
 *    for it, an executable for this machine identical to the one the build helper produced;
 * 3. unpacks it (`dpkg-deb -x`, no root needed) and runs e2e/installed-deb.smoke.ts on the unpacked
 *    app through the e2e harness (tauri-driver + WebKitWebDriver, under Xvfb when there is no display):
 *    status `running` with the bundled sidecar, one ping.
 *
 * Linux only. `--no-build` checks the .deb already built; `--keep` leaves the unpacked tree.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { buildGuestJs, cargoTargetDir, exampleAppDir } from "./build.ts";
import { capture, repoRoot, run, runNodeWithDisplay } from "./lib.ts";
import { workspaceVersion } from "./package-check.ts";
import { inspectExecutable, mebibytes } from "./sidecars.ts";

/** Debian's name of this machine's architecture, and the matching ELF machine and Rust triple. */
const HOSTS: Partial<Record<string, { deb: string; elf: string; triple: string }>> = {
  x64: { deb: "amd64", elf: "x86_64", triple: "x86_64-unknown-linux-gnu" },
  arm64: { deb: "arm64", elf: "aarch64", triple: "aarch64-unknown-linux-gnu" },
};
const HOST = HOSTS[process.arch];

interface TauriConf {
  productName: string;
  version: string;
  mainBinaryName?: string;
}

/** Builds the .deb; returns its path and how long `tauri build` took. */
export function buildDeb(): { deb: string; seconds: number } {
  buildGuestJs();
  const tauri = path.join(repoRoot, "node_modules", ".bin", "tauri");
  const started = performance.now();
  run(tauri, ["build", "--debug", "--bundles", "deb", "--", "--locked"], { cwd: exampleAppDir });
  return { deb: findDeb(), seconds: (performance.now() - started) / 1000 };
}

/** The .deb `tauri build --debug --bundles deb` writes for the example app. */
export function findDeb(): string {
  if (!HOST) throw new Error(`no Debian architecture known for ${process.arch}`);
  const conf = JSON.parse(readFileSync(path.join(exampleAppDir, "src-tauri", "tauri.conf.json"), "utf8")) as TauriConf;
  const deb = path.join(cargoTargetDir(), "debug", "bundle", "deb", `${conf.productName}_${conf.version}_${HOST.deb}.deb`);
  if (!existsSync(deb)) throw new Error(`${deb} is missing: run \`npm run test:deb\` without --no-build`);
  return deb;
}

/** Checks the package's control fields and files; unpacks it into a new directory and returns it. */
export function checkDeb(deb: string): string {
  if (!HOST) throw new Error(`no Debian architecture known for ${process.arch}`);
  const problems: string[] = [];
  const field = (name: string) => capture("dpkg-deb", ["--field", deb, name]);
  const version = workspaceVersion();
  if (field("Version") !== version) problems.push(`Version is ${field("Version")}, want ${version}`);
  if (field("Architecture") !== HOST.deb) problems.push(`Architecture is ${field("Architecture")}, want ${HOST.deb}`);
  if (!field("Depends").includes("libwebkit2gtk-4.1-0")) problems.push(`Depends (${field("Depends")}) lacks libwebkit2gtk-4.1-0`);

  const root = mkdtempSync(path.join(os.tmpdir(), "anysync-deb-"));
  run("dpkg-deb", ["-x", deb, root]);
  const bin = path.join(root, "usr", "bin");
  const files = existsSync(bin) ? readdirSync(bin).sort() : [];
  console.log(`usr/bin: ${files.join(", ")}`);
  for (const name of ["tauri-app", "anysync-backend"]) {
    const file = path.join(bin, name);
    if (!existsSync(file)) {
      problems.push(`usr/bin/${name} is missing (usr/bin holds: ${files.join(", ") || "nothing"})`);
      continue;
    }
    if ((statSync(file).mode & 0o111) === 0) problems.push(`usr/bin/${name} is not executable`);
    const info = inspectExecutable(readFileSync(file));
    if (info.format !== "elf" || info.arch !== HOST.elf || !info.executable) {
      problems.push(`usr/bin/${name} is ${info.format} ${info.arch}, want an ELF ${HOST.elf} executable`);
    }
  }
  // The bundled sidecar is the one the build helper built for this target, unchanged.
  const built = path.join(exampleAppDir, "src-tauri", "binaries", `anysync-backend-${HOST.triple}`);
  const bundled = path.join(bin, "anysync-backend");
  if (existsSync(built) && existsSync(bundled) && !readFileSync(built).equals(readFileSync(bundled))) {
    problems.push(`usr/bin/anysync-backend differs from ${path.relative(repoRoot, built)}`);
  }
  if (existsSync(bundled)) {
    const reported = capture(bundled, ["--version"]);
    if (!reported.includes(version)) problems.push(`usr/bin/anysync-backend --version says ${JSON.stringify(reported)}, want ${version}`);
  }
  if (problems.length > 0) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`${path.relative(repoRoot, deb)}:\n  ${problems.join("\n  ")}`);
  }
  return root;
}

/** Runs e2e/installed-deb.smoke.ts on the unpacked tree, with a display and a session bus. */
export function smokeInstalled(root: string): void {
  const nodeArgs = ["--import", "tsx", "--test", "--test-reporter=spec", path.join("e2e", "installed-deb.smoke.ts")];
  console.log(`with ANYSYNC_INSTALLED_ROOT=${root}`);
  // As in e2e/run.ts: the report on stdout, the bus's and the webview's chatter into a file.
  const outDir = path.join(cargoTargetDir(), "e2e");
  const stderrPath = path.join(outDir, "deb-stderr.log");
  const result = runNodeWithDisplay(nodeArgs, {
    stderrPath,
    env: { ...process.env, ANYSYNC_INSTALLED_ROOT: root },
    tailLines: 30,
  });
  if (result.status !== 0) {
    throw new Error(
      `the installed app's smoke test failed (see ${stderrPath}, ${path.join(outDir, "tauri-driver.log")}):\n${result.stderrTail}`,
    );
  }
}

/** The whole job; returns what it measured. */
export function testDeb({ build = true, keep = false } = {}): { deb: string; bytes: number; seconds?: number } {
  if (process.platform !== "linux") throw new Error("the .deb check runs on Linux only");
  const { deb, seconds } = build ? buildDeb() : { deb: findDeb(), seconds: undefined };
  const bytes = statSync(deb).size;
  console.log(`\n${path.relative(repoRoot, deb)}: ${bytes} B (${mebibytes(bytes)})${seconds === undefined ? "" : `, tauri build took ${seconds.toFixed(1)} s`}`);
  const root = checkDeb(deb);
  try {
    smokeInstalled(root);
  } finally {
    if (keep) console.log(`unpacked tree kept at ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
  return { deb, bytes, seconds };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { deb, bytes, seconds } = testDeb({ build: !process.argv.includes("--no-build"), keep: process.argv.includes("--keep") });
  console.log(
    `\n${path.basename(deb)} (${mebibytes(bytes)}${seconds === undefined ? "" : `, built in ${seconds.toFixed(1)} s`}): ` +
      "sidecar beside the executable in usr/bin, installed app running and answering",
  );
}
