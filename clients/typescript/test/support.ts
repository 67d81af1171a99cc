/**
 * Helpers for the client's tests: a real `stepup serve` on a free loopback port with its
 * own data directory and an API key of role `app`, fresh identities, the development
 * outbox, and an authenticator app (RFC 6238 TOTP on node:crypto).
 *
 * The stepup command: env STEPUP_BIN, else `../../.venv/bin/stepup` from this package.
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHmac, randomBytes, randomInt } from "node:crypto";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** This package's directory (tests run from build/test/). */
export const PACKAGE_DIR = fileURLToPath(new URL("../../", import.meta.url));
export const STEPUP_BIN = process.env.STEPUP_BIN
  ? resolve(process.env.STEPUP_BIN)
  : resolve(PACKAGE_DIR, "../../.venv/bin/stepup");

export const WITHDRAWAL = {
  amount: "0.25", currency: "BTC", destination: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
};

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => done(port));
    });
  });
}

/** A loopback URL where nothing listens. */
export async function nowhere(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export interface Server {
  baseUrl: string;
  apiKey: string;
  dataDir: string;
  /** The paths `/openapi.json` lists (to skip the tests of calls not built yet). */
  paths: Set<string>;
  /** Run `stepup ARGS…` against this server's data directory; its standard output. */
  cli(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function stepupEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("STEPUP_")) env[k] = v;
  return { ...env, STEPUP_DATA_DIR: dataDir, STEPUP_ENV: "development" };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `stepup serve` in a fresh data directory, and an app key made in the same one. */
export async function startServer(): Promise<Server> {
  if (!existsSync(STEPUP_BIN)) {
    throw new Error(`no stepup command at ${STEPUP_BIN}: set STEPUP_BIN (or run make in the repository)`);
  }
  const home = await mkdtemp(join(tmpdir(), "stepup-ts-"));
  const dataDir = join(home, "data");
  const logPath = join(home, "serve.log");
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const log = openSync(logPath, "w");
  const proc: ChildProcess = spawn(
    STEPUP_BIN, ["serve", "--host", "127.0.0.1", "--port", String(port)],
    { cwd: home, env: stepupEnv(dataDir), stdio: ["ignore", log, log] });
  closeSync(log); // the child has its own copy
  const kill = () => { if (proc.exitCode === null) proc.kill("SIGKILL"); };
  process.once("exit", kill);

  const stop = async () => {
    process.removeListener("exit", kill);
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 15_000); })]);
      clearTimeout(timer);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGKILL");
        await exited;
      }
    }
    await rm(home, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) {
        const tail = (await readFile(logPath, "utf8").catch(() => "")).slice(-2000);
        throw new Error(`stepup serve exited with ${proc.exitCode}: ${tail}`);
      }
      try {
        const r = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) break;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error("stepup serve did not start within 60 s");
      await sleep(150);
    }
    const cli = async (args: string[]) => (await promisify(execFile)(
      STEPUP_BIN, args, { cwd: home, env: stepupEnv(dataDir), timeout: 60_000 })).stdout;
    const stdout = await cli(["apikey", "create", "--role", "app", "--name", "typescript client tests"]);
    const found = /^key:\s+(\S+)\s*$/m.exec(stdout);
    if (!found) throw new Error("no key in the output of `stepup apikey create`");
    const spec = await (await fetch(`${baseUrl}/openapi.json`)).json() as { paths: object };
    return { baseUrl, apiKey: found[1]!, dataDir, paths: new Set(Object.keys(spec.paths)), cli, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function email(): string {
  return `ts-client-${randomBytes(6).toString("hex")}@example.com`;
}

/** A fresh Russian mobile number, so no two tests share a resend timer. */
export function phone(): string {
  return `+7916${String(randomInt(10 ** 7)).padStart(7, "0")}`;
}

/** The code in the newest message to `to` in the development outbox. */
export async function lastCode(baseUrl: string, to: string, channel = "sms"): Promise<string> {
  const r = await fetch(`${baseUrl}/api/v1/dev/outbox?to=${encodeURIComponent(to)}`);
  if (r.status !== 200) throw new Error(`outbox: ${r.status} ${await r.text()}`);
  const { messages } = await r.json() as { messages: Array<{ channel: string; body: string }> };
  const bodies = messages.filter((m) => m.channel === channel).map((m) => m.body);
  if (!bodies.length) throw new Error(`no ${channel} message to ${to}`);
  // A security notice may have come after the code: the newest message with a code.
  const found = bodies.map((b) => /\b(\d{6})\b/.exec(b)).find((m) => m !== null);
  if (!found) throw new Error(`no code in ${JSON.stringify(bodies)}`);
  return found[1]!;
}

// --- TOTP (RFC 6238 over RFC 4226, HMAC-SHA1, 6 digits, 30 s) ----------------------------

export function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.toUpperCase().replace(/=+$/, "").replace(/\s/g, "");
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The HOTP value of `counter` (RFC 4226 §5.3). */
export function hotp(key: Buffer, counter: number, digits = 6): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac("sha1", key).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16)
    | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** An authenticator app on the real clock: each code is from a later 30-second step than
 * the one before (StepUp takes each step once), inside StepUp's ±1 step window, so a test
 * gets three codes before it has to wait. */
export class Authenticator {
  readonly key: Buffer;
  last: number | null = null;

  constructor(secretOrUri: string) {
    const secret = secretOrUri.startsWith("otpauth://")
      ? new URL(secretOrUri).searchParams.get("secret")!
      : secretOrUri;
    this.key = base32Decode(secret);
  }

  at(step: number): string {
    return hotp(this.key, step);
  }

  async code(): Promise<string> {
    for (;;) {
      const now = Date.now() / 1000;
      if (now % 30 > 28.5) { // too close to a step boundary: let it pass
        await sleep((30 - (now % 30) + 0.1) * 1000);
        continue;
      }
      const step = Math.floor(now / 30);
      const wanted = this.last === null ? step - 1 : Math.max(this.last + 1, step - 1);
      if (wanted <= step + 1) {
        this.last = wanted;
        return this.at(wanted);
      }
      await sleep((30 - (now % 30) + 0.1) * 1000);
    }
  }

  /** The code last handed out (a replay). */
  previous(): string {
    if (this.last === null) throw new Error("no code handed out yet");
    return this.at(this.last);
  }

  /** A code that is wrong now: none of the steps StepUp accepts. */
  wrong(): string {
    const step = Math.floor(Date.now() / 1000 / 30);
    const near = new Set([-2, -1, 0, 1, 2].map((d) => this.at(step + d)));
    for (let d = 100; ; d++) if (!near.has(this.at(step + d))) return this.at(step + d);
  }
}
