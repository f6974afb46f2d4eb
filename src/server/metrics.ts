/**
 * The service's counters in the Prometheus text format (version 0.0.4) for
 * /metrics. Labels are the route pattern, the method, the status and the
 * operation's outcome: never a tenant, an address or a key, so the page tells an
 * onlooker nothing about who uses the service.
 */
const MAX_LABELS = 1000;
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A thread's counters as plain data (structured-clone safe), for the page that sums every serving thread's. */
export interface MetricsSnapshot {
  requests: Array<[string, number]>;
  durations: Array<[string, { buckets: number[]; sum: number; count: number }]>;
  operations: Array<[string, number]>;
  inFlight: number;
  batch?: BatchCounters;
}

/**
 * The batch side's state (batch-worker.ts, keep-batch-thread.ts), summed over the
 * process's threads: batch threads running (a gauge), their restarts, chunks given
 * back for the service's passing trouble, and workers waiting for the store (a gauge).
 */
export interface BatchCounters {
  threadsRunning: number;
  threadRestarts: number;
  storeTrouble: number;
  waitingForStore: number;
}

/** A request counter and the duration histogram it adds to: what one route, method and status update. */
interface RequestCells {
  request: { n: number };
  duration: { buckets: number[]; sum: number; count: number };
}

export class Metrics {
  readonly #requests = new Map<string, { n: number }>();
  readonly #durations = new Map<string, { buckets: number[]; sum: number; count: number }>();
  readonly #operations = new Map<string, { n: number }>();
  /** The cells of each route, method and status, found without making a string (bounded: routes are patterns, methods and statuses few). */
  readonly #cells = new Map<string, Map<string, Map<number, RequestCells>>>();
  #cellCount = 0;
  /** The counter of each operation and outcome (a few dozen at most). */
  readonly #operationCells = new Map<string, Map<string, { n: number }>>();
  inFlight = 0;
  readonly batch: BatchCounters = { threadsRunning: 0, threadRestarts: 0, storeTrouble: 0, waitingForStore: 0 };

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    // The label strings are made once per method, route and status: a request only finds its cells.
    const cells = this.#cells.get(route)?.get(method)?.get(status) ?? this.#requestCells(method, route, status);
    cells.request.n++;
    const d = cells.duration;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) d.buckets[i]!++;
    d.sum += seconds;
    d.count++;
  }

  #requestCells(method: string, route: string, status: number): RequestCells {
    const requestLabel = `method="${method}",route="${escape(route)}",status="${status}"`;
    const durationLabel = `route="${escape(route)}"`;
    let request = this.#requests.get(requestLabel);
    if (!request) this.#requests.set(requestLabel, (request = { n: 0 }));
    let duration = this.#durations.get(durationLabel);
    if (!duration) this.#durations.set(durationLabel, (duration = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    const cells = { request, duration };
    if (this.#cellCount++ < MAX_LABELS) {
      const byMethod = this.#cells.get(route) ?? this.#cells.set(route, new Map()).get(route)!;
      (byMethod.get(method) ?? byMethod.set(method, new Map()).get(method)!).set(status, cells);
    }
    return cells;
  }

  /** One message handled: operation and outcome (docs/api.md lists them). */
  countOperation(operation: string, outcome: string): void {
    let cell = this.#operationCells.get(operation)?.get(outcome);
    if (!cell) {
      const key = `operation="${operation}",outcome="${outcome}"`;
      cell = this.#operations.get(key);
      if (!cell) this.#operations.set(key, (cell = { n: 0 }));
      const byOutcome = this.#operationCells.get(operation) ?? this.#operationCells.set(operation, new Map()).get(operation)!;
      if (this.#operationCells.size < MAX_LABELS) byOutcome.set(outcome, cell);
    }
    cell.n++;
  }

  snapshot(): MetricsSnapshot {
    return { requests: [...this.#requests].map(([k, c]) => [k, c.n]), durations: [...this.#durations].map(([k, d]) => [k, { ...d, buckets: [...d.buckets] }]), operations: [...this.#operations].map(([k, c]) => [k, c.n]), inFlight: this.inFlight, batch: { ...this.batch } };
  }

  /** Adds another thread's counters to these (server/workers: /metrics answers for the whole process). */
  absorb(s: MetricsSnapshot): this {
    for (const [k, v] of s.requests) add(this.#requests, k, v);
    for (const [k, v] of s.operations) add(this.#operations, k, v);
    for (const [k, d] of s.durations) {
      const mine = this.#durations.get(k);
      if (!mine) this.#durations.set(k, { ...d, buckets: [...d.buckets] });
      else {
        d.buckets.forEach((n, i) => (mine.buckets[i]! += n));
        mine.sum += d.sum;
        mine.count += d.count;
      }
    }
    this.inFlight += s.inFlight;
    if (s.batch) for (const k of Object.keys(this.batch) as Array<keyof BatchCounters>) this.batch[k] += s.batch[k];
    return this;
  }

  render(): string {
    const lines: string[] = [];
    lines.push('# HELP kakitome_http_requests_total HTTP requests answered.', '# TYPE kakitome_http_requests_total counter');
    for (const [k, v] of this.#requests) lines.push(`kakitome_http_requests_total{${k}} ${v.n}`);
    lines.push('# HELP kakitome_http_request_duration_seconds Time to answer a request.', '# TYPE kakitome_http_request_duration_seconds histogram');
    for (const [k, d] of this.#durations) {
      BUCKETS.forEach((b, i) => lines.push(`kakitome_http_request_duration_seconds_bucket{${k},le="${b}"} ${d.buckets[i]}`));
      lines.push(`kakitome_http_request_duration_seconds_bucket{${k},le="+Inf"} ${d.count}`);
      lines.push(`kakitome_http_request_duration_seconds_sum{${k}} ${d.sum}`, `kakitome_http_request_duration_seconds_count{${k}} ${d.count}`);
    }
    lines.push('# HELP kakitome_http_requests_in_flight Requests being answered now.', '# TYPE kakitome_http_requests_in_flight gauge', `kakitome_http_requests_in_flight ${this.inFlight}`);
    lines.push('# HELP kakitome_messages_total Messages handled by operation and outcome.', '# TYPE kakitome_messages_total counter');
    for (const [k, v] of this.#operations) lines.push(`kakitome_messages_total{${k}} ${v.n}`);
    const b = this.batch;
    lines.push('# HELP kakitome_batch_threads_running Batch threads signing chunks now (one per serving thread; 0 while one restarts or after it stopped for good).', '# TYPE kakitome_batch_threads_running gauge', `kakitome_batch_threads_running ${b.threadsRunning}`);
    lines.push('# HELP kakitome_batch_thread_restarts_total Batch threads started again after they died.', '# TYPE kakitome_batch_thread_restarts_total counter', `kakitome_batch_thread_restarts_total ${b.threadRestarts}`);
    lines.push('# HELP kakitome_batch_store_trouble_total Times the batch workers met the store unavailable: chunks given back (no attempt spent), claims and releases refused.', '# TYPE kakitome_batch_store_trouble_total counter', `kakitome_batch_store_trouble_total ${b.storeTrouble}`);
    lines.push('# HELP kakitome_batch_waiting_for_store Batch workers waiting for the store to come back.', '# TYPE kakitome_batch_waiting_for_store gauge', `kakitome_batch_waiting_for_store ${b.waitingForStore}`);
    return lines.join('\n') + '\n';
  }
}

function add(map: Map<string, { n: number }>, key: string, n: number): void {
  const cell = map.get(key);
  if (cell) cell.n += n;
  else map.set(key, { n });
}

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
