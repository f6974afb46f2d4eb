/**
 * What an administrator does with a message policy held (`kakitome gateway held
 * release|bounce`): it leaves the store only once the mail system took it.
 * - release: the message as received, with its envelope, is sent to `via` (Postfix's
 *   smtpd, so it passes through the gateway again and policy decides anew: after the
 *   recipient's certificate was imported it is encrypted; if it is still missing,
 *   it is held again, as a new entry);
 * - bounce: an RFC 3464 DSN to its sender, with the reason it was held, sent to `via`
 *   with the null sender, as the sender's DSN requests held with it ask (none when
 *   NOTIFY asks for no failure DSN: the removal is audited as suppressed).
 * - release of a message held for unauthenticated encryption (inbound, reason
 *   UNAUTH_ENC): the administrator chooses how it is delivered (`as`): 'decrypted',
 *   the neutralised form of policy deliver-decrypted under its warning, or
 *   'encrypted', still encrypted inside a message with the notice
 *   (deliver-encrypted). The delivered form is made here with the gateway's own
 *   code (processInbound, the recipients' policy with that one setting changed) and
 *   labelled `smime=neutral` (UNAUTH_ENC) under `authservId` (a message larger than
 *   streamAboveBytes with processInboundStream, spooled, as the gateway makes it:
 *   memory stays bounded); `via` is then the
 *   gateway's next hop (Postfix's reinjection listener): through Postfix's smtpd it
 *   would pass the gateway again and be labelled anew.
 * The entry is removed (and the removal audited) only after `via` accepted every
 * recipient; otherwise it stays and the error says what `via` answered. A released
 * message the gateway holds again (its recipient still has no valid certificate)
 * stays held: releaseHeldMessage then says 'held-again'.
 */
import { mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { ContentSpool } from '../cms/stream/content-spool.ts';
import { KakitomeError } from '../errors.ts';
import { HeldMessages } from '../store/held-messages.ts';
import type { Store } from '../store/store.ts';
import { notifiesFailure, returnedContent, UNAUTHENTICATED_RETURN } from '../smtp/build-delivery-status-notification.ts';
import { sendDeliveryStatusNotification } from './send-delivery-status-notification.ts';
import type { HostPort } from '../smtp/parse-host-port.ts';
import { NOTIFY_NEVER } from '../smtp/dsn-parameters.ts';
import { relayMessage, type RecipientOutcome, type RelayBody } from '../smtp/relay-message.ts';
import { PolicyDirectory } from '../store/policy-directory.ts';
import { createGatewayContext } from './gateway-context.ts';
import { processInbound } from './process-inbound.ts';
import { processInboundStream } from './process-inbound-stream.ts';
import { spoolBytesFor } from './spool-directory.ts';
import { SpooledMessage } from './spooled-message.ts';

export interface HeldActionOptions {
  via: HostPort;
  /** A message held for unauthenticated encryption: how it is delivered (required for those, refused for the others). */
  as?: 'decrypted' | 'encrypted';
  /** The authserv-id its Authentication-Results names (the gateway's --authserv-id; default: the host name). */
  authservId?: string;
  /** The name this host gives (EHLO, and the DSN's Reporting-MTA). */
  name?: string;
  timeoutMs?: number;
  /** Where a large held message waits while its delivered form is made (default: the system's temporary directory). */
  spoolDir?: string;
}

function requireAccepted(outcomes: readonly RecipientOutcome[], what: string): void {
  const refused = outcomes.filter((o) => o.status !== 'accepted');
  if (refused.length) throw new KakitomeError('INVALID_ARGUMENT', `${what} was not accepted (${refused.map((o) => `${o.recipient}: ${o.code || 'no answer'} ${o.response}`).join('; ')}); it stays held.`);
}

export async function releaseHeldMessage(store: Store, id: string, o: HeldActionOptions): Promise<'released' | 'held-again'> {
  const held = new HeldMessages(store);
  const m = await held.find(id);
  const name = o.name ?? hostname();
  const unauthenticated = m.reasonCode === 'UNAUTH_ENC';
  if (unauthenticated && !o.as) throw new KakitomeError('INVALID_ARGUMENT', `The held message ${id} is unauthenticated encryption (nobody vouches that it was not altered): say how it is delivered, --as encrypted (still encrypted, with a notice) or --as decrypted (opened, every link, image and style removed, under a warning).`);
  if (!unauthenticated && o.as) throw new KakitomeError('INVALID_ARGUMENT', `--as applies to messages held for unauthenticated encryption; ${id} was held because ${m.reason} It is released as received and the gateway decides anew.`);
  const owned: ContentSpool[] = [];
  try {
    const message = unauthenticated ? await deliveredForm(store, m, o.as!, o.authservId ?? name, o.spoolDir ?? tmpdir(), owned) : m.body();
    // With the sender's DSN requests as held (none for a message held before they were kept).
    const envelope = { from: m.sender, to: m.recipients, ...(m.dsn ? { dsn: m.dsn } : {}), ...(m.recipientDsn ? { recipientDsn: m.recipientDsn } : {}) };
    requireAccepted(await relayMessage({ nextHop: o.via, name, timeoutMs: o.timeoutMs ?? 120_000 }, envelope, message), `The held message ${id}`);
  } finally {
    await Promise.all(owned.map((s) => s.dispose().catch(() => undefined)));
  }
  return (await held.remove(id, m.generation, 'release', `sent to ${o.via.host}:${o.via.port} for ${m.recipients.length} recipient(s)${o.as ? `, ${o.as}` : ''}`)) ? 'released' : 'held-again';
}

type HeldForRelease = Awaited<ReturnType<HeldMessages['find']>>;

/**
 * What the gateway would have delivered under deliver-decrypted or deliver-encrypted,
 * for the held message's recipients, made with the gateway's own code: in memory up
 * to streamAboveBytes (processInbound), as the gateway makes it; a larger message is
 * spooled from the store segment by segment and made as it streams
 * (processInboundStream), its spools pushed to `owned`.
 */
async function deliveredForm(store: Store, m: HeldForRelease, as: 'decrypted' | 'encrypted', authservId: string, spoolDir: string, owned: ContentSpool[]): Promise<RelayBody> {
  const ctx = await createGatewayContext(store, await new PolicyDirectory(store).load(), authservId, new Set());
  const policy = ctx.policyFor(m.recipients[0] ?? '');
  const chosen = { ...policy, settings: { ...policy.settings, unauthenticatedEncryption: as === 'decrypted' ? 'deliver-decrypted' as const : 'deliver-encrypted' as const } };
  const streamAbove = ctx.global.streamAboveBytes;
  if (m.size <= streamAbove) return onlyFor(m, as, await processInbound(ctx, await m.message(), chosen, [], m.recipients)).message;
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const place = { dir: spoolDir, maxBytes: spoolBytesFor(Math.max(m.size, ctx.global.maxMessageBytes)), inMemoryBytes: streamAbove };
  const received = new ContentSpool({ dir: spoolDir, memoryBytes: streamAbove, maxBytes: place.maxBytes });
  owned.push(received);
  for await (const c of m.body().stream()) await received.write(c as Buffer);
  const r = onlyFor(m, as, await processInboundStream(ctx, await SpooledMessage.read(received), chosen, [], m.recipients, place, owned));
  return r.message.relayBody();
}

/**
 * A decrypted form goes only to recipients a key it was opened with names (the
 * gateway holds such a message for them alone, process-inbound.ts keysFor; an entry
 * held before that rule may name others): otherwise it is not released decrypted.
 */
function onlyFor<T extends { notFor?: string[] }>(m: HeldForRelease, as: 'decrypted' | 'encrypted', r: T): T {
  if (as === 'decrypted' && r.notFor) throw new KakitomeError('INVALID_ARGUMENT', `Held message ${m.id} is encrypted for keys that do not name ${r.notFor.length} of its recipients; it cannot be released decrypted to them. Release it --as encrypted, or bounce it.`);
  return r;
}

/**
 * Bounces a held message: a DSN to its sender naming the recipients whose NOTIFY
 * (held with it) asks for failures, with its ENVID and their ORCPT and what its RET
 * asks to be returned (build-delivery-status-notification.ts). When NOTIFY leaves no
 * recipient, or the message has the null sender (a DSN is never sent to it), nothing
 * is sent: the message is removed all the same, and the audit entry says the DSN was
 * suppressed and why. 'suppressed' then, else 'sent'. A DSN with the whole message
 * (RET=FULL) that the next hop refuses for its size goes again with the header
 * section, and the audit entry says so; a DSN not accepted leaves the message held.
 */
export async function bounceHeldMessage(store: Store, id: string, o: HeldActionOptions): Promise<'sent' | 'suppressed'> {
  const held = new HeldMessages(store);
  const m = await held.find(id);
  const name = o.name ?? hostname();
  const bounced = m.recipients.map((recipient, i) => ({ recipient, requests: m.recipientDsn?.[i] }));
  const notified = bounced.filter((r) => notifiesFailure(r.requests?.notify));
  const suppressed = bounced.length - notified.length;
  // RFC 5321 4.5.5, RFC 3461 6.2: never a DSN to the null reverse-path (a DSN or notice held); it was refused (501), and the message could never leave the store.
  if (m.sender === '') {
    await held.remove(id, m.generation, 'bounce', 'no DSN: the message has the null sender');
    return 'suppressed';
  }
  if (notified.length === 0) {
    await held.remove(id, m.generation, 'bounce', `no DSN: suppressed by the sender's NOTIFY for all ${suppressed} recipient(s)`);
    return 'suppressed';
  }
  const via = { nextHop: o.via, name, timeoutMs: o.timeoutMs ?? 120_000 };
  const { outcome, wholeRefused } = await sendDeliveryStatusNotification({
    reportingMta: name,
    sender: m.sender,
    recipients: notified.map((r) => ({ recipient: r.recipient, reason: `Held by the gateway and returned by an administrator: ${m.reason}`, ...(r.requests?.orcpt !== undefined ? { orcpt: r.requests.orcpt } : {}) })),
    ...(m.dsn?.envid !== undefined ? { envid: m.dsn.envid } : {}),
    returned: await returnedContent(m.dsn?.ret, m.size, () => m.message(), () => m.head()),
    arrival: m.heldAt,
    ...(m.reasonCode === 'UNAUTH_ENC' ? { explanation: UNAUTHENTICATED_RETURN } : {}),
    ...(m.queueId ? { queueId: m.queueId } : {}),
  }, async (dsn) => (await relayMessage(via, { from: '', to: [m.sender], recipientDsn: [NOTIFY_NEVER] }, dsn))[0]!);
  // Not accepted (with the header section either, when the whole message was refused for its size): it stays held.
  requireAccepted([outcome], `The delivery status notification for ${id}`);
  const headersOnly = wholeRefused ? ` (the header section only: the next hop refused the whole message for its size (${wholeRefused.response}))` : '';
  await held.remove(id, m.generation, 'bounce', `DSN to the sender via ${o.via.host}:${o.via.port}${headersOnly}${suppressed ? ` (${suppressed} of ${bounced.length} recipient(s) left out of it: suppressed by NOTIFY)` : ''}`);
  return 'sent';
}
