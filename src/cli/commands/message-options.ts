/**
 * Options every message command shares (-i/-o, batches), and commander argument
 * parsers. Kept apart so each command file reads as its own option list.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { describeError } from '../describe-error.ts';
import { exitCodeForError } from '../exit-codes.ts';
import { toFailure } from '../job.ts';

/** Accumulates a repeatable option (--ca A --ca B). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function parseWorkerCount(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > 64) throw new InvalidArgumentError('expected a number of worker threads from 1 to 64.');
  return n;
}

export interface MessageIoOptions {
  in?: string;
  out?: string;
  mbox?: boolean;
  jobs?: number;
}

/** -i/--in, -o/--out, and the batch options. */
export function addMessageIo(cmd: Command, what: { in: string; out: string }): Command {
  return cmd
    .option('-i, --in <file>', `${what.in}; a directory of .eml files or an mbox file starts a batch (default: standard input)`)
    .option('-o, --out <file>', `${what.out}; a directory (or an mbox file) for a batch (default: standard output)`)
    .option('--mbox', 'treat IN as an mbox file even if it does not start with a "From " line')
    .addOption(new Option('--jobs <n>', 'worker threads for a batch (default: one per core)').argParser(parseWorkerCount));
}

/** The message-command fields of the CLI options. */
export function ioOf(opts: MessageIoOptions): { input?: string; output?: string; mbox?: boolean; jobs?: number } {
  return {
    ...(opts.in !== undefined ? { input: opts.in } : {}),
    ...(opts.out !== undefined ? { output: opts.out } : {}),
    ...(opts.mbox ? { mbox: true } : {}),
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
  };
}

/**
 * Wraps a command's action: its result becomes the exit status, and an error
 * thrown before the command could start (a bad --pass source, an unreadable
 * file) is reported like any other, never as a stack trace.
 */
export function commandAction<T>(name: string, run: (opts: T) => Promise<number>): (opts: T) => Promise<void> {
  return async (opts: T) => {
    try {
      process.exitCode = await run(opts);
    } catch (e) {
      // --json promises JSON on stdout, failures included.
      if ((opts as { json?: boolean }).json === true) {
        const f = toFailure(e);
        process.stdout.write(JSON.stringify({ status: 'error', code: f.code, summary: f.message, signers: [], warnings: [] }, null, 2) + '\n');
      }
      process.stderr.write(describeError(name, e) + '\n');
      process.exitCode = exitCodeForError(e);
    }
  };
}
