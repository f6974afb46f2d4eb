/**
 * The gateway's metrics, with prom-client (issue 13, "Operations"): counters, the
 * in-flight gauge and the latency histogram in a registry of this gateway's own
 * (not prom-client's global one, so two gateways in one process, as in the tests,
 * count apart), served as Prometheus text by serve-health.ts. Label values come
 * from closed sets (directions, actions, reply classes, outcomes, error codes), never
 * from message content, so the series stay few and nothing of a message leaks.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

type Labels = Record<string, string>;

const BUCKETS_SECONDS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const COUNTERS = {
  kakitome_gateway_messages_total: { help: 'Messages answered, by direction, action taken and the reply class given to the MTA.', labelNames: ['direction', 'action', 'reply'] },
  kakitome_gateway_recipients_total: { help: 'Recipient copies relayed, by direction, action and next-hop outcome (accepted, temporary, permanent).', labelNames: ['direction', 'action', 'outcome'] },
  kakitome_gateway_smime_results_total: { help: 'Inbound smime results written to Authentication-Results (pass, fail, neutral, none, temperror, permerror).', labelNames: ['result'] },
  kakitome_gateway_sender_auth_results_total: { help: 'Inbound DKIM, SPF and DMARC results written to Authentication-Results (policy senderAuthentication), by method and result.', labelNames: ['method', 'result'] },
  kakitome_gateway_dkim_no_key_total: { help: 'Outbound messages sent without DKIM although policy dkim is on, because the From domain has no active DKIM key.', labelNames: [] },
  kakitome_gateway_unsigned_no_key_total: { help: 'Outbound messages passed unsigned because the From address has no current signing key in the store.', labelNames: [] },
  kakitome_gateway_errors_total: { help: 'Messages deferred or refused because of an error, by code (library codes, INTERNAL, SIZE).', labelNames: ['code'] },
  kakitome_gateway_duplicates_risked_total: { help: 'Messages answered 4xx after the next hop had accepted some copies (SMTP mode): those recipients will receive the retry again.', labelNames: [] },
  kakitome_gateway_queue_waits_total: { help: 'Transactions that waited at MAIL FROM for a place (every crypto worker busy and maxQueuedMessages waiting): backpressure to the MTA.', labelNames: [] },
  kakitome_gateway_busy_total: { help: 'Transactions answered 451 4.3.2 at MAIL FROM because no place freed within queueWaitMs (the MTA retries them later).', labelNames: [] },
  kakitome_gateway_slow_clients_total: { help: 'Connections answered 421 4.4.2 and closed for slowness, by the limit passed (command: commandTimeoutMs; data: minDataRate; session: sessionTimeoutMs).', labelNames: ['limit'] },
  kakitome_gateway_dsn_total: { help: 'Delivery status notifications of the gateway\'s own to senders, by action (failed: policy bounces in SMTP mode; relayed: NOTIFY=SUCCESS toward a next hop without DSN) and outcome (the next hop\'s answer, or suppressed: the sender\'s NOTIFY asked for none).', labelNames: ['action', 'outcome'] },
} as const;

export type CounterName = keyof typeof COUNTERS;

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #counters = new Map<string, Counter<string>>();
  readonly #inFlight: Gauge<string>;
  readonly #latency: Histogram<string>;

  constructor() {
    for (const [name, c] of Object.entries(COUNTERS)) this.#counters.set(name, new Counter({ name, help: c.help, labelNames: [...c.labelNames], registers: [this.registry] }));
    this.#inFlight = new Gauge({ name: 'kakitome_gateway_in_flight', help: 'Messages being processed now.', registers: [this.registry] });
    this.#latency = new Histogram({ name: 'kakitome_gateway_message_seconds', help: 'Time from the end of DATA to the reply, in seconds.', buckets: BUCKETS_SECONDS, registers: [this.registry] });
  }

  inc(name: CounterName, labels: Labels = {}, by = 1): void {
    // Labels in name order, as the exposition wrote them before prom-client.
    this.#counters.get(name)!.inc(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))), by);
  }

  setInFlight(value: number): void {
    this.#inFlight.set(value);
  }

  observeSeconds(seconds: number): void {
    this.#latency.observe(seconds);
  }

  /** The value of one counter series (tests, health). */
  async value(name: CounterName, labels: Labels = {}): Promise<number> {
    const want = Object.entries(labels);
    const found = (await this.#counters.get(name)!.get()).values.find((v) => want.length === Object.keys(v.labels).length && want.every(([k, x]) => v.labels[k] === x));
    return found?.value ?? 0;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
