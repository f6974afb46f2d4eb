/**
 * `kakitome inspect`: a message's structure without any key (MIME tree, S/MIME
 * layers, CMS types, algorithms, recipients, signers). Nothing it prints is a
 * verification result. The report is the command's output, so it goes to stdout.
 */
import type { Command } from 'commander';
import type { InspectNode, InspectReport, CertificateSummary } from '../../smime/inspect-message.ts';
import { EXIT_OK } from '../exit-codes.ts';
import { readInput, writeStdout } from '../io.ts';
import { commandAction } from './message-options.ts';

function certLine(c: CertificateSummary): string {
  return `${c.subject} (issuer ${c.issuer}, serial ${c.serial}${c.emails.length ? `, ${c.emails.join(', ')}` : ''}, valid ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()})`;
}

function nodeLines(n: InspectNode, indent: string, out: string[]): void {
  const name = n.path === '' ? 'message' : `part ${n.path}`;
  const params = Object.entries(n.params).map(([k, v]) => `; ${k}=${v}`).join('');
  out.push(`${indent}${name}: ${n.mediaType}${params} [${n.transferEncoding}, ${n.size} bytes]${n.filename ? ` "${n.filename}"` : ''}`);
  const sub = indent + '    ';
  const s = n.smime;
  if (s) {
    out.push(`${sub}CMS ${s.type}`);
    if (s.signed) {
      out.push(`${sub}${s.signed.detached ? 'detached' : 'encapsulated'} content; digests ${s.signed.digestAlgorithms.join(', ')}`);
      for (const signer of s.signed.signers) {
        out.push(`${sub}signer ${signer.identifier}: ${signer.digestAlgorithm} / ${signer.signatureAlgorithm}${signer.signingTime ? `, signingTime ${signer.signingTime.toISOString()}` : ''} (not verified)`);
      }
      for (const c of s.signed.certificates) out.push(`${sub}certificate ${certLine(c)}`);
      if (s.signed.content) nodeLines(s.signed.content, sub, out);
    }
    if (s.enveloped) {
      out.push(`${sub}content encryption ${s.enveloped.contentEncryption}${s.enveloped.authenticated ? ' (authenticated)' : ' (NOT authenticated)'}`);
      for (const r of s.enveloped.recipients) out.push(`${sub}recipient (${r.kind}): ${r.identifiers.join('; ')}`);
    }
    for (const c of s.certificates ?? []) out.push(`${sub}certificate ${certLine(c)}`);
  }
  if (n.error) out.push(`${sub}error ${n.error.code}: ${n.error.message}`);
  for (const w of n.warnings) out.push(`${sub}warning: ${w}`);
  for (const c of n.children) nodeLines(c, sub, out);
}

/** The human form of an InspectReport. */
export function renderInspectReport(r: InspectReport): string {
  const out: string[] = [];
  out.push(r.layers.length > 0 ? `S/MIME: ${r.layers.join(' -> ')}` : 'S/MIME: none (not signed or encrypted)');
  for (const [name, value] of r.headers) out.push(`${name}: ${value}`);
  out.push('');
  nodeLines(r.tree, '', out);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('inspect')
    .summary('show a message\'s MIME and S/MIME structure (no key needed)')
    .description('Show a message\'s structure without any key: the MIME tree, S/MIME layers, CMS content types, algorithms, recipients (whose key can open it) and signers. Nothing shown is verified: use verify for that. The report goes to standard output.')
    .option('--json', 'print the report as JSON')
    .option('-i, --in <file>', 'message to inspect (default: standard input)')
    .addHelpText('after', `
Exit status: 0 the message was read; 2 usage error or malformed input.

Examples:
  kakitome inspect -i sealed.eml
  kakitome inspect --json -i signed.eml | jq .layers`)
    .action(commandAction('inspect', async (opts: { json?: boolean; in?: string }) => {
      // Loaded on use: `kakitome --help` need not load the S/MIME layer.
      const { inspectMessage } = await import('../../smime/inspect-message.ts');
      const report = inspectMessage(await readInput(opts.in));
      await writeStdout(Buffer.from(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderInspectReport(report)));
      return EXIT_OK;
    }));
}
