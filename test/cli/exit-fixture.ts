/**
 * A stand-in for a message command's end (launcher-natural-end.test.ts): it keeps some
 * objects, waits 0.3 s (V8's stress allocation thread, when enabled, is then at work),
 * writes a line to standard output and ends with status 3: by the launcher's
 * endCommand (bin/end-command.js), or by process.exit() as the launcher did before
 * when END=process.exit.
 */
// The launcher's modules are plain JavaScript without declarations: the one function used, typed here.
const launcherEnd: string = '../../bin/end-command.js';
const { endCommand } = await import(launcherEnd) as { endCommand(code: number): Promise<void> };

const kept: object[] = [];
for (let i = 0; i < 20_000; i++) kept.push({ i });
await new Promise((resolve) => setTimeout(resolve, 300));
process.stdout.write(`ended with ${kept.length} objects\n`);
if (process.env.END === 'process.exit') process.exit(3);
await endCommand(3);
