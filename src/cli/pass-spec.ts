/**
 * Passphrase arguments in OpenSSL's syntax (openssl-passphrase-options(1)), so that
 * scripts written for `openssl cms -passin` carry over:
 *
 *   pass:TEXT   the passphrase itself (UNSAFE: visible in `ps` and the shell history)
 *   env:VAR     the value of an environment variable
 *   file:PATH   the first line of a file
 *   fd:N        the first line read from file descriptor N
 *   stdin       the first line of standard input
 *   prompt      typed on the terminal (/dev/tty), not echoed (Kakitome's own form)
 *
 * As in OpenSSL, only the first line counts and its line ending is dropped. Error
 * messages never repeat the argument: a user who forgot the `pass:` prefix would
 * otherwise see their passphrase echoed into a log.
 *
 * `pass:TEXT` is accepted (scripts written for openssl use it) with a one-line
 * warning on standard error when that is a terminal: every local account can read
 * the command line (/proc/PID/cmdline, `ps`) while the command runs. Not when
 * standard error goes to a pipe or a file: scripts and their tests check that it
 * stays empty, and the person who could act on the warning reads a terminal
 * (docs/cli.md, "Passphrases").
 */
import { readFile } from 'node:fs/promises';
import { createReadStream, openSync, writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { KakitomeError } from '../errors.ts';

/** A passphrase longer than this is a mistake (a whole file given by accident). */
const MAX_PASSPHRASE_BYTES = 64 * 1024;

export interface PassSpecContext {
  /** Environment to read env:VAR from (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  /** Set when standard input already carries the message: `stdin` is then refused. */
  stdinInUse?: boolean;
  /** What `prompt` asks (default "Passphrase: "). */
  prompt?: string;
}

let warnedOfPass = false;

/** The warning about pass:TEXT, once per process, on a terminal only. */
function warnOfPassOnCommandLine(): void {
  if (warnedOfPass || !process.stderr.isTTY) return;
  warnedOfPass = true;
  process.stderr.write('kakitome: warning: pass:TEXT puts the passphrase on the command line, where every user of this machine can read it (ps, /proc) while the command runs; use env:VAR, file:PATH, fd:N or prompt.\n');
}

function invalid(message: string): never {
  throw new KakitomeError('INVALID_ARGUMENT', message);
}

/** The first line of `data`, without its CR/LF, as OpenSSL reads a passphrase file. */
function firstLine(data: Buffer): string {
  let end = data.indexOf(0x0a);
  if (end < 0) end = data.length;
  if (end > MAX_PASSPHRASE_BYTES) invalid('The passphrase source is too long: give a file whose first line is the passphrase.');
  if (end > 0 && data[end - 1] === 0x0d) end--;
  return data.subarray(0, end).toString('utf8');
}

/** Reads a stream up to its first newline (or end), never more than the bound. */
async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    chunks.push(b);
    size += b.length;
    if (b.includes(0x0a) || size > MAX_PASSPHRASE_BYTES) break;
  }
  return firstLine(Buffer.concat(chunks));
}

/**
 * Asks on the controlling terminal with echo off, as ssh and gpg do: /dev/tty, not
 * standard input (which may carry the message) nor standard output (which may be
 * the result). Enter ends the line; Backspace edits; Ctrl-C or Ctrl-D cancels.
 */
async function promptOnTerminal(question: string): Promise<string> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch (e) {
    throw new KakitomeError('INVALID_ARGUMENT', 'prompt: there is no terminal to ask on; give the passphrase as file:PATH, fd:N or env:VAR.', { cause: e });
  }
  const tty = new ReadStream(fd);
  tty.setRawMode(true);
  writeSync(fd, question);
  const typed: number[] = [];
  try {
    return await new Promise<string>((resolve, reject) => {
      tty.on('error', reject);
      tty.on('data', (chunk: Buffer) => {
        for (const b of chunk) {
          if (b === 0x0d || b === 0x0a) return resolve(Buffer.from(typed).toString('utf8'));
          if (b === 0x03 || b === 0x04) return reject(new KakitomeError('INVALID_ARGUMENT', 'prompt: cancelled.'));
          if (b === 0x7f || b === 0x08) typed.pop();
          else if (typed.length < MAX_PASSPHRASE_BYTES) typed.push(b);
        }
      });
    });
  } finally {
    typed.fill(0);
    writeSync(fd, '\n');
    tty.setRawMode(false);
    tty.destroy(); // closes the descriptor
  }
}

/** Resolves a pass SPEC to the passphrase it designates. */
export async function resolvePassSpec(spec: string, context: PassSpecContext = {}): Promise<string> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  switch (kind) {
    case 'pass':
      if (colon < 0) break;
      warnOfPassOnCommandLine();
      return arg;
    case 'env': {
      if (arg === '') invalid('--pass env: needs a variable name, as in env:KAKITOME_PASS.');
      const value = (context.env ?? process.env)[arg];
      if (value === undefined) invalid(`--pass env:${arg}: the environment variable ${arg} is not set.`);
      return value;
    }
    case 'file': {
      if (arg === '') invalid('--pass file: needs a path, as in file:/run/secrets/key-pass.');
      let data: Buffer;
      try {
        data = await readFile(arg);
      } catch (e) {
        throw new KakitomeError('INVALID_ARGUMENT', `--pass file:${arg}: cannot read the passphrase file (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
      }
      return firstLine(data);
    }
    case 'fd': {
      const fd = Number(arg);
      if (!/^[0-9]+$/.test(arg) || !Number.isSafeInteger(fd)) invalid('--pass fd:N needs a file descriptor number, as in fd:3.');
      if (fd === 0 && context.stdinInUse) invalid('--pass fd:0 reads standard input, which already carries the message: use -i FILE or another pass source.');
      try {
        return await readFirstLine(createReadStream('', { fd, autoClose: false }));
      } catch (e) {
        throw new KakitomeError('INVALID_ARGUMENT', `--pass fd:${fd}: cannot read the passphrase from that descriptor.`, { cause: e });
      }
    }
    case 'stdin':
      if (colon >= 0) break;
      if (context.stdinInUse) invalid('--pass stdin: standard input already carries the message: use -i FILE or another pass source.');
      return readFirstLine(process.stdin);
    case 'prompt':
      if (colon >= 0) break;
      return promptOnTerminal(context.prompt ?? 'Passphrase: ');
  }
  // Deliberately no echo of `spec`: it may be the passphrase itself.
  return invalid('--pass: unrecognised passphrase source; use file:PATH, fd:N, env:VAR, stdin or prompt (pass:TEXT works but shows the passphrase to `ps` and the shell history).');
}

/**
 * A new passphrase (one that will protect something): never empty, and asked twice
 * when typed at the prompt, since a typo would lock the owner out.
 */
export async function resolveNewPassphrase(spec: string, question: string): Promise<string> {
  const first = await resolvePassSpec(spec, { stdinInUse: true, prompt: question });
  if (first === '') invalid('The new passphrase is empty: an empty passphrase protects nothing.');
  if (spec === 'prompt' && (await resolvePassSpec(spec, { prompt: 'Again: ' })) !== first) invalid('The two passphrases differ; nothing was changed.');
  return first;
}
