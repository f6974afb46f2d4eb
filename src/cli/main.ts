/**
 * The `kakitome` program: global help, the command registry, and the mapping of
 * every outcome to an exit status (see exit-codes.ts). Usage errors found by
 * commander (unknown option, missing argument, bad choice) exit 2, like malformed input.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE, exitCodeForError } from './exit-codes.ts';
import { describeError } from './describe-error.ts';

function packageVersion(): string {
  // ../../package.json from both src/cli/main.ts and dist/cli/main.js.
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const EXAMPLES = `
Exit status:
  0  success (verify: the signature is valid and the signer trusted)
  1  verification failed, signer untrusted, or the message cannot be decrypted
  2  usage error or malformed input
  3  internal error (a bug in kakitome)

Examples:
  kakitome sign --cert me.pem --key me.key -i draft.eml -o signed.eml
  kakitome verify --ca ca.pem -i signed.eml -o content.eml
  kakitome encrypt --to bob.pem --to me.pem -i signed.eml -o sealed.eml
  kakitome decrypt --cert bob.pem --key bob.key --ca ca.pem -i sealed.eml -o plain.eml
  kakitome inspect -i sealed.eml
  kakitome sign --cert me.pem --key me.key -i outbox/ -o signed/     # every .eml, all cores

Documentation: docs/cli.md`;

type Register = (program: Command) => void;

/**
 * The message commands, each registered by a module that adds that one command:
 * a run of one of them loads its module alone. `commands/index.ts` imports every
 * command module (the store, the CA, serve, the gateway...): 79 modules on the main
 * thread of a sign batch instead of about 25, a tenth of a batch's fixed CPU
 * (docs/performance.md, "Batches through the CLI").
 */
const MESSAGE_COMMANDS = new Map<string, () => Promise<Register>>([
  ['sign', async () => (await import('./commands/sign.ts')).register],
  ['verify', async () => (await import('./commands/verify.ts')).register],
  ['encrypt', async () => (await import('./commands/encrypt.ts')).register],
  ['decrypt', async () => (await import('./commands/decrypt.ts')).register],
  ['inspect', async () => (await import('./commands/inspect.ts')).register],
]);

/**
 * Builds the program for `argv`: with a message command first, only that command
 * (its help and its errors are the same); otherwise every command, for the global
 * help, `help CMD`, and commander's "did you mean" on a mistyped one.
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('kakitome')
    .description('S/MIME 4.0 for whole e-mail messages: sign, verify, encrypt, decrypt and inspect .eml files.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText('after', EXAMPLES);
  const only = MESSAGE_COMMANDS.get(argv[0] ?? '');
  if (only) (await only())(program);
  else for (const register of (await import('./commands/index.ts')).COMMANDS) register(program);
  return program;
}

/** Runs the command line; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = undefined;
  const program = await buildProgram(argv);
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with a CommanderError whose exitCode is 0.
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    // Commands report their own errors; anything reaching here escaped them.
    process.stderr.write(describeError('', e) + '\n');
    return exitCodeForError(e);
  }
  return Number(process.exitCode ?? EXIT_OK);
}
