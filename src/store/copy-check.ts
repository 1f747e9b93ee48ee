// The check of a snapshot's copy on the node that serves it: its checksum and SQLite's
// quick_check, in a child process while the copy is read (store/snapshot.ts makes the copy).
import { execFile, type ChildProcess } from "node:child_process";
import { SQLITE_MODULE } from "./sqlite-module.js";

/**
 * A snapshot's checksum, beside the link's MAC: SHA-512/256 (FIPS 180-4), 32 bytes like SHA-256
 * but 2.4 times as fast on this machine's 64-bit cores without SHA extensions (the profile of a
 * 283 MB join spent 1.7 s of the serving node's CPU and 1.7 s of the joining node's in SHA-256).
 */
export const SNAPSHOT_CHECKSUM = "sha512-256";
/** What the check of a copy found: its checksum, and its problems (none when sound). */
export interface CopyVerdict {
  readonly checksum: Buffer;
  readonly problems: readonly string[];
}

/** A copy's check running in a child process. */
export interface CopyCheck {
  readonly verdict: Promise<CopyVerdict>;
  cancel(): void;
}

// The child's program: hashes the file, then runs quick_check on it, and prints both as JSON.
// A child process, not the serving node's thread: both take seconds on a large store (quick_check
// 2.5 s on 283 MB here), better-sqlite3 is synchronous, and the node keeps serving likes.
const CHECK_PROGRAM = `
const [path, sqlite, algorithm] = process.argv.slice(1);
const { createHash } = require("node:crypto");
const { openSync, readSync, closeSync } = require("node:fs");
const hash = createHash(algorithm);
const fd = openSync(path, "r");
const buffer = Buffer.allocUnsafe(1 << 20);
for (let at = 0, n; (n = readSync(fd, buffer, 0, buffer.length, at)) > 0; at += n)
  hash.update(buffer.subarray(0, n));
closeSync(fd);
const checksum = hash.digest("hex");
let problems;
try {
  const db = new (require(sqlite))(path, { readonly: true, fileMustExist: true });
  const rows = db.prepare("PRAGMA quick_check").pluck().all();
  problems = rows.length === 1 && rows[0] === "ok" ? [] : rows.map(String);
} catch (error) {
  problems = ["not a database: " + String(error)];
}
process.stdout.write(JSON.stringify({ checksum, problems }));
`;

/** Starts the check of a copy that nothing writes any more. */
export function checkCopy(path: string): CopyCheck {
  let child: ChildProcess | undefined;
  const verdict = new Promise<CopyVerdict>((resolve, reject) => {
    child = execFile(
      process.execPath,
      ["-e", CHECK_PROGRAM, path, SQLITE_MODULE, SNAPSHOT_CHECKSUM],
      // Without the node's own options (a preload, a profiler): a plain program.
      { env: { ...process.env, NODE_OPTIONS: "" }, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error)
          return reject(new Error(`the check of ${path} failed: ${error.message} ${stderr}`));
        try {
          const out = JSON.parse(stdout) as { checksum: string; problems: string[] };
          resolve({ checksum: Buffer.from(out.checksum, "hex"), problems: out.problems });
        } catch (parseError) {
          reject(
            new Error(
              `the check of ${path} printed ${stdout.slice(0, 200)}: ${String(parseError)}`,
            ),
          );
        }
      },
    );
  });
  // Awaited only when the caller asks for the end; a cancelled or failed one is not unhandled.
  verdict.catch(() => {});
  return { verdict, cancel: () => void child?.kill() };
}
