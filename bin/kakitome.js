#!/usr/bin/env node
// The `kakitome` launcher. In a checkout it runs the TypeScript sources directly
// (Node 24 strips types); an installed package has no src/ and runs dist/.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`kakitome needs Node.js 24 or newer (this is ${process.version}). In a checkout, run: npx node bin/kakitome.js\n`);
  process.exit(2);
}

const source = new URL('../src/cli/main.ts', import.meta.url);
const entry = existsSync(source) ? source : new URL('../dist/cli/main.js', import.meta.url);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
