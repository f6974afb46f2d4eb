/**
 * QUIRK (memory): chunks of a stream (a fresh buffer per read from fs.createReadStream
 * or a socket) live outside the V8 heap, and V8 frees them only at a garbage
 * collection. Passing them through allocates almost nothing on the heap, so no
 * young-generation collection runs, and V8 waits for external-memory pressure (tens
 * of MiB of dead chunks) before a full collection. Hashing a 1 GiB createReadStream
 * in 1 MiB chunks costs +75 MiB RSS that way, with or without this code around it.
 * Some small short-lived heap objects per MiB passed make the scavenger run every
 * few MiB and free the dead chunks while they are young. Measured with
 * bench/large-message-op.ts sign on 1 GiB (Node 24, young generation 8 MiB after
 * loading our modules; load average 4-5, 2026-11-23): 146-149 MiB peak RSS without,
 * 108-112 MiB with 16,384 objects per MiB (106 MiB with 32,768), and no more CPU
 * (user 1.2 s against 1.3-1.5 s: fewer page faults). 8,192 per MiB was not enough,
 * and one large allocation of the same size does not have the effect.
 *
 * Used by the streaming payload of sign and encrypt (stream-payload.ts) and by the
 * gateway's spools (a large message received from a socket, and replayed to the next
 * hop's socket).
 */
const PROMPT_EVERY = 1024 * 1024;
const PROMPT_OBJECTS = 16_384;
/** The objects go into a ring so that the optimiser cannot drop them; each is garbage once overwritten. */
const promptRing: Array<{ n: number } | undefined> = new Array(64).fill(undefined);

function promptScavenge(): void {
  for (let i = 0; i < PROMPT_OBJECTS; i++) promptRing[i & 63] = { n: i };
}

/** Counts the bytes a stream passed and prompts a scavenge every MiB. */
export class ScavengePrompter {
  #since = 0;

  passed(bytes: number): void {
    this.#since += bytes;
    if (this.#since >= PROMPT_EVERY) {
      this.#since = 0;
      promptScavenge();
    }
  }
}
