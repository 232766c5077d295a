/**
 * `npm run bench:ab -- --a=DRIVER:SIDECAR --b=DRIVER:SIDECAR [--rounds=8] [--seconds=2]`: one change
 * measured before and after in the same run. Alternates the two builds (A B A B ...), each round a
 * fresh supervisor and sidecar running the driver's profile mode (V1 on the generic path, 16 B,
 * concurrency 1, back to back), and prints per build the median over rounds of the p50 latency and
 * of the CPU each side spent per call, and the B/A ratios. Alternating spreads a shared machine's
 * drift over both builds alike.
 */
import { spawnSync } from "node:child_process";
import { median } from "./stats.ts";

interface Round {
  p50Us: number;
  rustUs: number;
  goUs: number;
}

function option(name: string, fallback?: string): string {
  const value = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
  if (value === undefined) throw new Error(`--${name}= is required (see the header of bench/ab.ts)`);
  return value;
}

/** One profile-mode run of `build` (`driver:sidecar`). */
function measure(build: string, seconds: number): Round {
  const [driver, sidecar] = build.split(":");
  if (!driver || !sidecar) throw new Error(`${build}: expected DRIVER:SIDECAR`);
  const result = spawnSync(driver, ["--sidecar", sidecar, "--profile-seconds", String(seconds)], { encoding: "utf8" });
  const line = result.stdout.split("\n").find((l) => l.startsWith("PROFILE "));
  if (result.status !== 0 || !line) throw new Error(`${driver}: exited with ${result.status}\n${result.stderr}`);
  const cpu = JSON.parse(line.slice(line.indexOf("cpu=") + 4)) as { rustUsPerCall: number; goUsPerCall: number };
  return { p50Us: Number((/p50Us=([\d.]+)/.exec(line))?.[1]), rustUs: cpu.rustUsPerCall, goUs: cpu.goUsPerCall };
}

const builds = { A: option("a"), B: option("b") };
const rounds = Number(option("rounds", "8"));
const seconds = Number(option("seconds", "2"));
const results: Record<"A" | "B", Round[]> = { A: [], B: [] };
for (let round = 0; round < rounds; round++) {
  for (const name of round % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)) {
    const r = measure(builds[name], seconds);
    results[name].push(r);
    console.log(`round ${round} ${name}: p50 ${r.p50Us.toFixed(1)} µs, Rust ${r.rustUs.toFixed(1)} µs/call, Go ${r.goUs.toFixed(1)} µs/call`);
  }
}
const summary = (name: "A" | "B"): Round => ({
  p50Us: median(results[name].map((r) => r.p50Us)),
  rustUs: median(results[name].map((r) => r.rustUs)),
  goUs: median(results[name].map((r) => r.goUs)),
});
const [a, b] = [summary("A"), summary("B")];
for (const [name, s] of [["A", a], ["B", b]] as const) {
  console.log(`${name} ${builds[name]}: p50 ${s.p50Us.toFixed(1)} µs, Rust ${s.rustUs.toFixed(1)} µs/call, Go ${s.goUs.toFixed(1)} µs/call`);
}
console.log(
  `B/A: p50 ${(b.p50Us / a.p50Us).toFixed(2)}x, Rust CPU ${(b.rustUs / a.rustUs).toFixed(2)}x, Go CPU ${(b.goUs / a.goUs).toFixed(2)}x (medians of ${rounds} rounds of ${seconds} s each)`,
);
