/**
 * What an administrator does with a message policy held (`kakitome gateway held
 * release|bounce`): it leaves the store only once the mail system took it.
 * - release: the message as received, with its envelope, is sent to `via` (Postfix's
 *   smtpd, so it passes through the gateway again and policy decides anew: after the
 *   recipient's certificate was imported it is encrypted; if it is still missing,
 *   it is held again, as a new entry);
 * - bounce: an RFC 3464 DSN to its sender, with the reason it was held, sent to `via`
 *   with the null sender.
 * The entry is removed (and the removal audited) only after `via` accepted every
 * recipient; otherwise it stays and the error says what `via` answered. A released
 * message the gateway holds again (its recipient still has no valid certificate)
 * stays held: releaseHeldMessage then says 'held-again'.
 */
import { hostname } from 'node:os';
import { KakitomeError } from '../errors.ts';
import { HeldMessages } from '../store/held-messages.ts';
import type { Store } from '../store/store.ts';
import { buildDeliveryStatusNotification } from './build-delivery-status-notification.ts';
import type { HostPort } from '../smtp/parse-host-port.ts';
import { relayMessage, type RecipientOutcome } from '../smtp/relay-message.ts';

export interface HeldActionOptions {
  via: HostPort;
  /** The name this host gives (EHLO, and the DSN's Reporting-MTA). */
  name?: string;
  timeoutMs?: number;
}

function requireAccepted(outcomes: readonly RecipientOutcome[], what: string): void {
  const refused = outcomes.filter((o) => o.status !== 'accepted');
  if (refused.length) throw new KakitomeError('INVALID_ARGUMENT', `${what} was not accepted (${refused.map((o) => `${o.recipient}: ${o.code || 'no answer'} ${o.response}`).join('; ')}); it stays held.`);
}

export async function releaseHeldMessage(store: Store, id: string, o: HeldActionOptions): Promise<'released' | 'held-again'> {
  const held = new HeldMessages(store);
  const m = await held.find(id);
  const name = o.name ?? hostname();
  requireAccepted(await relayMessage({ nextHop: o.via, name, timeoutMs: o.timeoutMs ?? 120_000 }, { from: m.sender, to: m.recipients }, m.message), `The held message ${id}`);
  return (await held.remove(id, m.generation, 'release', `sent to ${o.via.host}:${o.via.port} for ${m.recipients.length} recipient(s)`)) ? 'released' : 'held-again';
}

export async function bounceHeldMessage(store: Store, id: string, o: HeldActionOptions): Promise<void> {
  const held = new HeldMessages(store);
  const m = await held.find(id);
  const name = o.name ?? hostname();
  const dsn = buildDeliveryStatusNotification({
    reportingMta: name,
    sender: m.sender,
    recipients: m.recipients.map((recipient) => ({ recipient, reason: `Held by the gateway and returned by an administrator: ${m.reason}` })),
    original: m.message,
    arrival: m.heldAt,
    ...(m.queueId ? { queueId: m.queueId } : {}),
  });
  requireAccepted(await relayMessage({ nextHop: o.via, name, timeoutMs: o.timeoutMs ?? 120_000 }, { from: '', to: [m.sender] }, dsn), `The delivery status notification for ${id}`);
  await held.remove(id, m.generation, 'bounce', `DSN to the sender via ${o.via.host}:${o.via.port}`);
}
