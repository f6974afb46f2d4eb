/**
 * Where the gateway's policy comes from: the store (all levels:
 * src/store/policy-directory.ts), into which `--policy FILE` is imported at start
 * and again on SIGHUP (each part the file carries replaces that part; the flat form
 * of the global settings alone, as before levels existed, replaces only the global
 * level). A file with an error is refused naming the file, the level and the
 * setting, and nothing of it is imported.
 *
 * Edits made in the store (`kakitome policy set`, another node's import) reach a
 * running gateway within POLICY_REFRESH_MS: it reads the store's policy revision
 * that often and loads the levels again when it moved.
 */
import { readFile } from 'node:fs/promises';
import { KakitomeError } from '../errors.ts';
import { parsePolicyDocument, type PolicyDocument } from '../policy/policy-levels.ts';
import { PolicyDirectory, type PolicySnapshot } from '../store/policy-directory.ts';
import type { Store } from '../store/store.ts';

/** How stale a node's policy may be after an edit in the store, at most (plus one store round trip). */
export const POLICY_REFRESH_MS = 10_000;

/** Reads and checks a policy file. */
export async function readPolicyFile(path: string, what = '--policy'): Promise<PolicyDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new KakitomeError('INVALID_ARGUMENT', `${what} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  return parsePolicyDocument(text, `${what} ${path}`);
}

/** Imports the policy file (when there is one) into the store, then reads the store's policy. */
export async function loadGatewayPolicy(store: Store, path: string | undefined): Promise<PolicySnapshot> {
  const policies = new PolicyDirectory(store);
  if (path !== undefined) await policies.import(await readPolicyFile(path), { source: path });
  return policies.load();
}
