/**
 * Loaded with `node --import` by cli-usage.test.ts: records the files the main
 * thread loads and prints them on standard error at exit, one `loaded URL` a line.
 */
import { registerHooks } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const loaded: string[] = [];
registerHooks({
  load(url, context, next) {
    if (url.startsWith('file:')) loaded.push(url);
    return next(url, context);
  },
});
process.on('exit', () => {
  if (isMainThread) process.stderr.write(loaded.map((u) => `loaded ${u}\n`).join(''));
});
