/**
 * Handing a key over to its owner, once: the store opens each key for export
 * (audited as key.export with the reason), the key and its certificate go into a
 * PKCS#12 file under a random password shown once, and the file (with, for a
 * single identity, the iPhone/iPad configuration profile around it) is held for
 * its owner's one download (handovers.ts). Every console page that hands a key
 * over (a new certificate, a renewal, a lost device, the keys for old mail) comes
 * through here, so they all hand over the same way.
 */
import { randomInt } from 'node:crypto';
import type { Pkcs12Identity, Pkcs12Profile } from '../../keys/export-pkcs12.ts';
import { exportPkcs12OffThread } from '../../keys/export-pkcs12-off-thread.ts';
import type { Store } from '../../store/store.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { readMailServerSettings } from '../../store/mail-server-settings.ts';
import { buildMobileconfig } from './build-mobileconfig.ts';
import { signMobileconfig } from './sign-mobileconfig.ts';
import type { ConsoleContext, ConsoleView } from './console-context.ts';
import { h, type Html } from './render.ts';

/** No 0/O, 1/I/l: read off a screen and typed on a phone without doubt. */
const PASSWORD_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

/** `groups` groups of five characters from 31 symbols (4 groups: 99 bits; 6: 148 bits). */
export function makeHandoverPassword(groups = 4): string {
  const chars = Array.from({ length: groups * 5 }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]!);
  return Array.from({ length: groups }, (_, g) => chars.slice(g * 5, g * 5 + 5).join('')).join('-');
}

export interface HandOverKey {
  keyId: string;
  certificate: Certificate;
}

export interface HandOverOptions {
  /** The first is the current identity (its chain goes in the file); the others follow it (past keys). */
  keys: HandOverKey[];
  profile: Pkcs12Profile;
  /** Why the keys leave the store, in the audit log. */
  reason: string;
  /** The file's name before .p12. */
  fileStem: string;
  /** Offer the iPhone/iPad profile too (one identity only). */
  mobileconfig: boolean;
  /** The keys' owner, named in the file (default: the signed-in person, who receives it). */
  owner?: string;
}

export interface HandedOver {
  password: string;
  downloadId: string;
  profileId?: string;
}

/** Exports the keys (audited), builds the file(s) and holds them for the signed-in person. */
export async function handOverKeys(cx: ConsoleContext, v: ConsoleView, store: Store, o: HandOverOptions): Promise<HandedOver> {
  const person = v.person!;
  const identities: Pkcs12Identity[] = [];
  for (const k of o.keys) identities.push({ key: await store.exportPrivateKey(k.keyId, o.reason), certificate: k.certificate, friendlyName: o.owner ?? person.email });
  const [first, ...others] = identities;
  const chain = await store.findIssuerChain(first!.certificate);
  const password = makeHandoverPassword();
  // Off the serving thread: each key's derivation takes about a second of CPU.
  const file = await exportPkcs12OffThread({ ...first!, chain, password, profile: o.profile, others });
  const downloadId = await cx.handovers.hold(person.id, `${o.fileStem}.p12`, 'application/x-pkcs12', file);
  if (!o.mobileconfig) return { password, downloadId };
  const t = v.t.me;
  const root = chain.at(-1);
  const mail = await readMailServerSettings(store);
  const profileFile = await signMobileconfig(store, buildMobileconfig({
    email: person.email, organisation: v.organisation, host: new URL(cx.origin.baseUrl).hostname, pkcs12: Buffer.from(file),
    ...(root && Buffer.compare(root.subject, root.issuer) === 0 ? { root } : {}),
    ...(mail ? { mail } : {}),
    text: { displayName: t.profileName(v.organisation), description: t.profileDescription(person.email), identityName: person.email, rootName: t.profileRootName(v.organisation), accountName: v.t.mine.profileAccountName(v.organisation) },
  }));
  const profileId = await cx.handovers.hold(person.id, `${person.email}.mobileconfig`, 'application/x-apple-aspen-config', profileFile);
  return { password, downloadId, profileId };
}

/** The card that shows the password once and the download links. */
export function handoverCard(v: ConsoleView, handed: HandedOver, downloadLabel: string): Html {
  const t = v.t.me;
  return h`<div class="card stack">
<p><strong>${t.password}</strong></p>
<p class="secret" data-handover-password>${handed.password}</p>
<p class="hint">${t.passwordHint}</p>
<div class="actions"><a class="button" href="/me/certificate/download/${handed.downloadId}" download>${downloadLabel}</a></div>
<p>${t.install}</p>
${handed.profileId ? h`<div class="actions"><a class="button secondary" href="/me/certificate/download/${handed.profileId}" download data-mobileconfig>${t.downloadProfile}</a></div>
<p class="hint">${t.installProfile}</p>` : ''}
</div>`;
}
