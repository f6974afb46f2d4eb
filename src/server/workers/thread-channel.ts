/**
 * Calls between a serving thread and the thread that coordinates the serving
 * threads (start-serve-workers.ts), over the worker's message port: `call` sends
 * an operation and resolves with what the other side's handler returned (or
 * rejects with its error's message and code), `send` expects no answer. Messages
 * are structured clones: Buffers, Dates and plain objects cross as they are.
 * When the other side goes away, every call still waiting is rejected.
 */
import { errorFromData, isKakitomeError, remedyOf, type ErrorCode, type Remedy } from '../../errors.ts';

interface Endpoint {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

type Handler = (...args: never[]) => unknown;

/** A handler's answer whose ArrayBuffers move to the other side instead of being copied (they are unusable here afterwards). */
class Transferred {
  readonly value: unknown;
  readonly list: readonly ArrayBuffer[];
  constructor(value: unknown, list: readonly ArrayBuffer[]) {
    this.value = value;
    this.list = list;
  }
}

/** Answers `bytes` by moving its memory to the other thread: `bytes` must own its whole ArrayBuffer (Buffer.allocUnsafeSlow, not a pooled Buffer). */
export function transferBytes(bytes: Uint8Array): Transferred {
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength || !(bytes.buffer instanceof ArrayBuffer)) throw new Error('transferBytes: the bytes do not own their ArrayBuffer.');
  return new Transferred(bytes, [bytes.buffer]);
}

interface Call {
  op: string;
  args: unknown[];
  id?: number;
}

interface Reply {
  reply: number;
  ok: boolean;
  value?: unknown;
  /** `kakitome`: the code is one of ours (a KakitomeError again on this side); else a system error's (EADDRINUSE). */
  error?: { message: string; code?: string; kakitome?: boolean; remedy?: Remedy; errcode?: number };
}

export class ThreadChannel {
  readonly #endpoint: Endpoint;
  readonly #handlers = new Map<string, Handler>();
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;
  #closed: Error | undefined;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
    endpoint.on('message', (m) => this.#receive(m as Call | Reply));
  }

  /** Answers `op` from the other side with `fn`'s result (awaited). */
  handle(op: string, fn: Handler): void {
    this.#handlers.set(op, fn);
  }

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#endpoint.postMessage({ op, args, id } satisfies Call);
    });
  }

  send(op: string, ...args: unknown[]): void {
    if (!this.#closed) this.#endpoint.postMessage({ op, args } satisfies Call);
  }

  /** The other side is gone: calls waiting for it fail with `reason`, and later ones at once. */
  close(reason: Error): void {
    this.#closed = reason;
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }

  #receive(m: Call | Reply): void {
    if ('reply' in m) {
      const p = this.#pending.get(m.reply);
      this.#pending.delete(m.reply);
      if (!p) return;
      if (m.ok) p.resolve(m.value);
      else p.reject(m.error?.kakitome ? errorFromData({ ...m.error, code: m.error.code as ErrorCode }) : Object.assign(new Error(m.error?.message ?? 'failed'), m.error?.code ? { code: m.error.code } : {}, m.error?.errcode !== undefined ? { errcode: m.error.errcode } : {}));
      return;
    }
    const handler = this.#handlers.get(m.op);
    const answer = (r: Omit<Reply, 'reply'>) => {
      if (m.id === undefined || this.#closed) return;
      if (r.value instanceof Transferred) this.#endpoint.postMessage({ reply: m.id, ok: r.ok, value: r.value.value } satisfies Reply, r.value.list);
      else this.#endpoint.postMessage({ reply: m.id, ...r } satisfies Reply);
    };
    if (!handler) return answer({ ok: false, error: { message: `no handler for ${m.op}` } });
    Promise.resolve()
      .then(() => handler(...(m.args as never[])))
      .then(
        (value) => answer({ ok: true, value }),
        (e: unknown) => answer({ ok: false, error: errorOf(e) }),
      );
  }
}

function errorOf(e: unknown): NonNullable<Reply['error']> {
  const code = (e as { code?: unknown } | undefined)?.code;
  // node:sqlite's result code (SQLITE_FULL, SQLITE_BUSY) crosses too: the serving thread answers 503 for it (server/temporary-failure.ts).
  const errcode = (e as { errcode?: unknown } | undefined)?.errcode;
  return { message: e instanceof Error ? e.message : String(e), ...(typeof code === 'string' ? { code, kakitome: isKakitomeError(e) } : {}), ...(typeof errcode === 'number' ? { errcode } : {}), ...(isKakitomeError(e) ? remedyOf(e) : {}) };
}

/**
 * Ties a thread's end to its channel: calls still waiting fail when it errs or
 * exits, and `failed` hears of an end that `stopping` did not expect. Resolves
 * once the thread exited.
 */
export function watchThread(worker: { on(event: 'error', listener: (e: Error) => void): unknown; on(event: 'exit', listener: (code: number) => void): unknown }, channel: ThreadChannel, what: string, stopping: () => boolean, failed: (e: Error) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    worker.on('error', (e) => {
      channel.close(e);
      if (!stopping()) failed(e);
    });
    worker.on('exit', (code) => {
      const gone = new Error(`${what} exited (${code}).`);
      channel.close(gone);
      if (!stopping()) failed(gone);
      resolve();
    });
  });
}
