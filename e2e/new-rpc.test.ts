/**
 * The cost of a new RPC, measured: in a temporary copy of the repository, add one method to the
 * example's .proto and its Go handler (the only two files a person writes), run `npm run gen` and
 * `npm run build`, call the method from the page through the generated client, and assert that git
 * sees no other changed file than those two and generated code.
 *
 * The copy builds into a target dir of its own (`<target>/new-rpc`, seeded from the main one), so
 * only the workspace's own crates compile again and nothing the main build left is touched.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cargoTargetDir } from "../scripts/build.ts";
import { capture, repoRoot, run } from "../scripts/lib.ts";
import { openApp, pageReady, startDriver, type Browser, type Driver } from "./harness.ts";

const PROTO_FILE = "examples/tauri-app/backend/proto/example/v1/counter.proto";
/** The method the developer adds to CounterService in PROTO_FILE... */
const PROTO_METHOD = `service CounterService {
  // Double doubles a number (added by e2e/new-rpc.test.ts).
  rpc Double(DoubleRequest) returns (DoubleResponse);
`;
/** ...and its messages. */
const PROTO_MESSAGES = `
// DoubleRequest carries the number to double (added by e2e/new-rpc.test.ts).
message DoubleRequest {
  // The number to double.
  int64 value = 1;
}

// DoubleResponse carries the doubled number.
message DoubleResponse {
  // Twice the request's value.
  int64 value = 1;
}
`;

/** The handler: the method on the example's counter service. */
const HANDLER_FILE = "examples/tauri-app/backend/internal/counter/double.go";
const HANDLER = `package counter

import (
	"context"

	examplev1 "github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/proto/example/v1"
)

// Double doubles a number.
func (s *Service) Double(_ context.Context, req *examplev1.DoubleRequest) (*examplev1.DoubleResponse, error) {
	return &examplev1.DoubleResponse{Value: 2 * req.GetValue()}, nil
}
`;

/** Paths `npm run gen` writes; everything else git sees changed must be one of the two files above. */
const GENERATED = [/^examples\/tauri-app\/backend\/proto\/.*\.pb\.go$/, /^examples\/tauri-app\/src\/gen\//];

let copy = "";
let driver: Driver | undefined;
let browser: Browser | undefined;
const env = (target: string): NodeJS.ProcessEnv => ({ ...process.env, CARGO_TARGET_DIR: target });

describe("a new RPC costs a .proto method and a Go handler", { timeout: 1_200_000 }, () => {
  before(
    async () => {
      copy = mkdtempSync(path.join(os.tmpdir(), "anysync-new-rpc-"));
      const tree = path.join(copy, "repo");
      mkdirSync(tree);
      // The working tree as git sees it (tracked and untracked, minus ignored), not build outputs.
      const files = capture("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]);
      const list = path.join(copy, "files");
      writeFileSync(list, files);
      run("tar", ["--null", "--ignore-failed-read", "-T", list, "-cf", path.join(copy, "tree.tar")]);
      run("tar", ["-xf", path.join(copy, "tree.tar"), "-C", tree]);
      symlinkSync(path.join(repoRoot, "node_modules"), path.join(tree, "node_modules"));
      // A target dir of its own, kept between runs so only what changed compiles again. Seeded once
      // by a real copy of the main one (no hard links: cargo and rustc rewrite some outputs in place,
      // and the copy's crates hash like the originals, so shared files would cross over).
      const target = path.join(cargoTargetDir(), "new-rpc");
      const main = path.join(cargoTargetDir(), "debug");
      if (!existsSync(path.join(target, "debug")) && existsSync(main)) {
        mkdirSync(path.join(target, "debug"), { recursive: true });
        for (const dir of ["deps", "build", ".fingerprint"]) {
          if (existsSync(path.join(main, dir))) run("cp", ["-a", path.join(main, dir), path.join(target, "debug", dir)]);
        }
      }
      const git = (...args: string[]) => run("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@localhost", ...args], { cwd: tree });
      git("init", "-q");
      git("add", "-A");
      git("commit", "-q", "-m", "baseline");

      // The developer's whole change.
      const proto = path.join(tree, PROTO_FILE);
      const source = readFileSync(proto, "utf8");
      assert.ok(source.includes("service CounterService {\n"), `${PROTO_FILE} declares CounterService`);
      writeFileSync(proto, source.replace("service CounterService {\n", PROTO_METHOD) + PROTO_MESSAGES);
      writeFileSync(path.join(tree, HANDLER_FILE), HANDLER);

      run("npm", ["run", "--silent", "gen"], { cwd: tree, env: env(target) });
      run("npm", ["run", "--silent", "build"], { cwd: tree, env: env(target) });

      driver = await startDriver();
      browser = await openApp(path.join(target, "debug", "tauri-app"));
      await pageReady(browser);
    },
    { timeout: 1_200_000 },
  );

  after(async () => {
    await browser?.deleteSession().catch(() => undefined);
    await driver?.stop();
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it("changed only the .proto, the handler and generated files", (t) => {
    const tree = path.join(copy, "repo");
    const names = (...args: string[]) => capture("git", args, { cwd: tree }).split("\n").filter(Boolean);
    const changed = [...names("diff", "--name-only", "HEAD"), ...names("ls-files", "--others", "--exclude-standard")];
    const handEdited = changed.filter((file) => !GENERATED.some((pattern) => pattern.test(file)));
    assert.deepEqual(handEdited.sort(), [PROTO_FILE, HANDLER_FILE].sort());
    t.diagnostic(`new RPC: ${handEdited.length} hand-edited files, ${changed.length - handEdited.length} generated: ${changed.join(", ")}`);
  });

  it("the page calls the new method through its generated client", async () => {
    const script = `
      const { counter } = window.anysyncExample;
      return counter.double({ value: 21n }).then((r) => Number(r.value), (e) => String(e && e.code || e));
    `;
    assert.equal(await browser?.execute(script), 42);
  });
});
