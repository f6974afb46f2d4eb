/**
 * Counters and a latency histogram in the Prometheus text exposition format
 * (version 0.0.4), kept in memory, written by hand: a few counters do not need a
 * metrics library. Label values come from closed sets (directions, actions, reply
 * classes, error codes), never from message content, so the series stay few.
 */
type Labels = Record<string, string>;

const BUCKETS_SECONDS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Family {
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  series: Map<string, { labels: Labels; value: number; buckets?: number[]; sum?: number }>;
}

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}="${labels[k]!.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',');
}

export class GatewayMetrics {
  readonly #families = new Map<string, Family>();

  constructor() {
    this.#define('kakitome_gateway_messages_total', 'counter', 'Messages answered, by direction, action taken and the reply class given to the MTA.');
    this.#define('kakitome_gateway_recipients_total', 'counter', 'Recipient copies relayed, by direction, action and next-hop outcome (accepted, temporary, permanent).');
    this.#define('kakitome_gateway_smime_results_total', 'counter', 'Inbound smime results written to Authentication-Results (pass, fail, neutral, none, temperror, permerror).');
    this.#define('kakitome_gateway_sender_auth_results_total', 'counter', 'Inbound DKIM, SPF and DMARC results written to Authentication-Results (policy senderAuthentication), by method and result.');
    this.#define('kakitome_gateway_dkim_no_key_total', 'counter', 'Outbound messages sent without DKIM although policy dkim is on, because the From domain has no active DKIM key.');
    this.#define('kakitome_gateway_unsigned_no_key_total', 'counter', 'Outbound messages passed unsigned because the From address has no current signing key in the store.');
    this.#define('kakitome_gateway_errors_total', 'counter', 'Messages deferred or refused because of an error, by code (library codes, STORE, INTERNAL, SIZE).');
    this.#define('kakitome_gateway_duplicates_risked_total', 'counter', 'Messages answered 4xx after the next hop had accepted some copies (SMTP mode): those recipients will receive the retry again.');
    this.#define('kakitome_gateway_dsn_total', 'counter', 'Delivery status notifications the gateway sent to senders (policy bounces in SMTP mode), by the next hop\'s outcome.');
    this.#define('kakitome_gateway_in_flight', 'gauge', 'Messages being processed now.');
    this.#define('kakitome_gateway_message_seconds', 'histogram', 'Time from the end of DATA to the reply, in seconds.');
  }

  #define(name: string, type: Family['type'], help: string): void {
    this.#families.set(name, { help, type, series: new Map() });
  }

  #series(name: string, labels: Labels) {
    const family = this.#families.get(name)!;
    const key = labelKey(labels);
    let s = family.series.get(key);
    if (!s) {
      s = { labels, value: 0, ...(family.type === 'histogram' ? { buckets: BUCKETS_SECONDS.map(() => 0), sum: 0 } : {}) };
      family.series.set(key, s);
    }
    return s;
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    this.#series(name, labels).value += by;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.#series(name, labels).value = value;
  }

  observe(name: string, seconds: number, labels: Labels = {}): void {
    const s = this.#series(name, labels);
    s.value++;
    s.sum! += seconds;
    BUCKETS_SECONDS.forEach((le, i) => {
      if (seconds <= le) s.buckets![i]!++;
    });
  }

  /** The value of one series (tests, health). */
  value(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.series.get(labelKey(labels))?.value ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.#families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const s of f.series.values()) {
        const key = labelKey(s.labels);
        if (f.type !== 'histogram') {
          lines.push(`${name}${key ? `{${key}}` : ''} ${s.value}`);
          continue;
        }
        const sep = key ? `${key},` : '';
        BUCKETS_SECONDS.forEach((le, i) => lines.push(`${name}_bucket{${sep}le="${le}"} ${s.buckets![i]}`));
        lines.push(`${name}_bucket{${sep}le="+Inf"} ${s.value}`, `${name}_sum${key ? `{${key}}` : ''} ${s.sum}`, `${name}_count${key ? `{${key}}` : ''} ${s.value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
