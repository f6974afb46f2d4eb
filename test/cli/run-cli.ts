/**
 * Runs the real `kakitome` launcher as a child process (the tests run on Node 24,
 * so process.execPath runs the TypeScript sources exactly as users do).
 */
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/kakitome.js', import.meta.url));

/**
 * For an environment whose HOME is a fresh directory: the launcher's module compile
 * cache of the user running the tests, where `kakitome` run by hand in this checkout
 * keeps it (bin/kakitome.js). With the fresh HOME's own cache each such HOME's first
 * start compiled every module again (0.3 s of CPU for `sign --help`, more for a
 * gateway and its threads). HOME itself stays fresh: ~/.kakitome never takes part.
 */
export const USER_COMPILE_CACHE = { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME || join(homedir(), '.cache') };

export interface CliResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

export function runCli(args: string[], options: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return runProcess(process.execPath, [BIN, ...args], options);
}

export function runProcess(cmd: string, args: string[], options: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** A plain message as a mail client would hand it over. */
export function draftMessage(from: string, to: string, subject: string, body = 'Hello,\r\n\r\nthis is a test message.\r\n'): Buffer {
  return Buffer.from(
    `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Mon, 23 Nov 2026 13:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.com>\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`,
  );
}

/**
 * The environment of a user whose key store lives in `home` (created by `kakitome
 * init`): nothing inherited from the machine's store settings, HOME pointed at
 * `userHome` so a developer's own ~/.kakitome never takes part.
 */
export function storeHomeEnv(home: string, userHome: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...USER_COMPILE_CACHE, KAKITOME_HOME: home, KAKITOME_DATABASE_URL: '', HOME: userHome };
  delete env.KAKITOME_MASTER_KEY;
  delete env.KAKITOME_MASTER_KEY_FILE;
  return env;
}
