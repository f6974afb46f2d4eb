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
}

export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #durations = new Map<string, { buckets: number[]; sum: number; count: number }>();
  readonly #operations = new Map<string, number>();
  /** Label strings by route, method and status (bounded: routes are patterns, methods and statuses few). */
  readonly #labels = new Map<string, Map<string, Map<number, { request: string; duration: string }>>>();
  #labelCount = 0;
  inFlight = 0;

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    // The label strings are made once per method, route and status (a request's costs no string).
    let labels = this.#labels.get(route)?.get(method)?.get(status);
    if (!labels) {
      labels = { request: `method="${method}",route="${escape(route)}",status="${status}"`, duration: `route="${escape(route)}"` };
      if (this.#labelCount++ < MAX_LABELS) {
        const byMethod = this.#labels.get(route) ?? this.#labels.set(route, new Map()).get(route)!;
        (byMethod.get(method) ?? byMethod.set(method, new Map()).get(method)!).set(status, labels);
      }
    }
    this.#requests.set(labels.request, (this.#requests.get(labels.request) ?? 0) + 1);
    let d = this.#durations.get(labels.duration);
    if (!d) this.#durations.set(labels.duration, (d = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) d.buckets[i]!++;
    d.sum += seconds;
    d.count++;
  }

  /** One message handled: operation sign|verify|encrypt|decrypt, outcome ok|refused|failed. */
  countOperation(operation: string, outcome: string): void {
    const key = `operation="${operation}",outcome="${outcome}"`;
    this.#operations.set(key, (this.#operations.get(key) ?? 0) + 1);
  }

  snapshot(): MetricsSnapshot {
    return { requests: [...this.#requests], durations: [...this.#durations].map(([k, d]) => [k, { ...d, buckets: [...d.buckets] }]), operations: [...this.#operations], inFlight: this.inFlight };
  }

  /** Adds another thread's counters to these (server/workers: /metrics answers for the whole process). */
  absorb(s: MetricsSnapshot): this {
    for (const [k, v] of s.requests) this.#requests.set(k, (this.#requests.get(k) ?? 0) + v);
    for (const [k, v] of s.operations) this.#operations.set(k, (this.#operations.get(k) ?? 0) + v);
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
    return this;
  }

  render(): string {
    const lines: string[] = [];
    lines.push('# HELP kakitome_http_requests_total HTTP requests answered.', '# TYPE kakitome_http_requests_total counter');
    for (const [k, v] of this.#requests) lines.push(`kakitome_http_requests_total{${k}} ${v}`);
    lines.push('# HELP kakitome_http_request_duration_seconds Time to answer a request.', '# TYPE kakitome_http_request_duration_seconds histogram');
    for (const [k, d] of this.#durations) {
      BUCKETS.forEach((b, i) => lines.push(`kakitome_http_request_duration_seconds_bucket{${k},le="${b}"} ${d.buckets[i]}`));
      lines.push(`kakitome_http_request_duration_seconds_bucket{${k},le="+Inf"} ${d.count}`);
      lines.push(`kakitome_http_request_duration_seconds_sum{${k}} ${d.sum}`, `kakitome_http_request_duration_seconds_count{${k}} ${d.count}`);
    }
    lines.push('# HELP kakitome_http_requests_in_flight Requests being answered now.', '# TYPE kakitome_http_requests_in_flight gauge', `kakitome_http_requests_in_flight ${this.inFlight}`);
    lines.push('# HELP kakitome_messages_total Messages handled by operation and outcome.', '# TYPE kakitome_messages_total counter');
    for (const [k, v] of this.#operations) lines.push(`kakitome_messages_total{${k}} ${v}`);
    return lines.join('\n') + '\n';
  }
}

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
