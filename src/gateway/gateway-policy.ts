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
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { KakitomeError } from '../errors.ts';
import { parsePolicyDocument, type PolicyDocument } from '../policy/policy-levels.ts';
import { PolicyDirectory, type PolicySnapshot } from '../store/policy-directory.ts';
import type { Store } from '../store/store.ts';

/** How stale a node's policy may be after an edit in the store, at most (plus one store round trip). */
export const POLICY_REFRESH_MS = 10_000;

/** The largest policy file read (some 100,000 address levels): a file past it is refused, not read. */
export const MAX_POLICY_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Reads and checks a policy file: a regular file of at most MAX_POLICY_FILE_BYTES.
 * A FIFO would hold the reload for ever and /dev/zero or a huge file would take the
 * gateway's memory, so both are refused before a byte is read.
 */
export async function readPolicyFile(path: string, what = '--policy'): Promise<PolicyDocument> {
  let text: string;
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile()) throw new KakitomeError('INVALID_ARGUMENT', `${what} ${path}: not a regular file; give the policy's JSON file.`);
    if (st.size > MAX_POLICY_FILE_BYTES) throw new KakitomeError('LIMIT', `${what} ${path}: ${st.size} bytes; a policy file is at most ${MAX_POLICY_FILE_BYTES} bytes.`);
    // Read to the bound, not to the end: a file growing since stat is judged by what it holds.
    const buf = Buffer.allocUnsafe(MAX_POLICY_FILE_BYTES + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = (await handle.read(buf, n, buf.length - n, n)).bytesRead;
    if (n > MAX_POLICY_FILE_BYTES) throw new KakitomeError('LIMIT', `${what} ${path}: larger than ${MAX_POLICY_FILE_BYTES} bytes; a policy file is at most that.`);
    text = buf.toString('utf8', 0, n);
  } catch (e) {
    if (e instanceof KakitomeError) throw e;
    throw new KakitomeError('INVALID_ARGUMENT', `${what} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  } finally {
    await handle?.close();
  }
  return parsePolicyDocument(text, `${what} ${path}`);
}

/** Imports the policy file (when there is one) into the store, then reads the store's policy. */
export async function loadGatewayPolicy(store: Store, path: string | undefined): Promise<PolicySnapshot> {
  const policies = new PolicyDirectory(store);
  if (path !== undefined) await policies.import(await readPolicyFile(path), { source: path });
  return policies.load();
}
