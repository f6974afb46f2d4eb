/**
 * Preloaded into every test file's process by `npm test` (node --import): Node's
 * module compile cache for the test processes themselves, so that each of the ~215
 * files does not strip and compile the same sources again (importing src/index.ts
 * took about 1 s of CPU cold, 0.45 s warm). It lives in node_modules/.cache (gone
 * with node_modules), never the shared temporary directory, and is set for this
 * process only: NODE_COMPILE_CACHE is not exported, so the `kakitome` processes the
 * tests start keep the launcher's own cache handling (bin/kakitome.js).
 */
import module from 'node:module';
import { fileURLToPath } from 'node:url';

if (!process.env.NODE_COMPILE_CACHE && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  module.enableCompileCache(fileURLToPath(new URL('../../node_modules/.cache/kakitome-tests/', import.meta.url)));
}
