/**
 * "Decrypt finds the key itself": the private keys in the store for an envelope's
 * recipients (EnvelopedData or AuthEnvelopedData ContentInfo, DER/BER), found by
 * each RecipientInfo's identifier (RFC 5652 6.2) whatever the certificate's
 * expiry or the key's status (key history).
 *
 * `findOwnedEnvelopeKeys` is the same for a caller who may use only some keys (a
 * tenant of the signing service, a person signed in to the console): recipients
 * are filtered by their certificates' addresses before any key is opened, so a key
 * that is not the caller's is never unsealed for it, nor audited as used by it.
 */
import { parseEnvelopeFromContentInfo } from '../cms/enveloped-data/parse.ts';
import { recipientIdentifiers } from '../cms/recipients/recipient-info.ts';
import type { CmsIdentifier } from '../cms/identifier.ts';
import type { CmsInput } from '../cms/content-info.ts';
import type { Limits } from '../limits.ts';
import type { Store } from './store.ts';
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';

export async function findEnvelopeKeys(store: Store, envelope: Uint8Array, limits?: Partial<Limits>, accept?: (certificate: Certificate) => boolean): Promise<{ key: KeyObject; certificate: Certificate }[]> {
  const parsed = parseEnvelopeFromContentInfo(envelope, limits);
  return store.findDecryptionKeys(parsed.recipients.flatMap(recipientIdentifiers), accept);
}

/**
 * `accept`: only keys whose certificate it accepts are opened (and their uses recorded).
 *
 * findEnvelopeKeys with the keys handed out while their uses are being committed
 * (Store.findDecryptionKeysRecording): nothing made with them may leave the caller
 * before `recorded` resolves.
 */
export async function findEnvelopeKeysRecording(store: Store, envelope: CmsInput, limits?: Partial<Limits>, accept?: (certificate: Certificate) => boolean): Promise<{ keys: { key: KeyObject; certificate: Certificate }[]; recorded: Promise<void> }> {
  const parsed = parseEnvelopeFromContentInfo(envelope, limits);
  return store.findDecryptionKeysRecording(parsed.recipients.flatMap(recipientIdentifiers), accept);
}

/** The keys of the recipients whose certificate names an address `owns` accepts. */
export async function findOwnedEnvelopeKeys(store: Store, envelope: Uint8Array, owns: (address: string) => Promise<boolean>, limits?: Partial<Limits>): Promise<{ key: KeyObject; certificate: Certificate }[]> {
  const ids = parseEnvelopeFromContentInfo(envelope, limits).recipients.flatMap(recipientIdentifiers);
  const owned: CmsIdentifier[] = [];
  for (const id of ids) {
    for (const rec of await store.findCertificatesByIdentifier(id)) {
      let mine = false;
      for (const address of rec.certificate.emailAddresses) if (await owns(address)) mine = true;
      if (mine) {
        owned.push(id);
        break;
      }
    }
  }
  return owned.length ? store.findDecryptionKeys(owned) : [];
}
