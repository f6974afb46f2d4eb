/**
 * "Decrypt finds the key itself": the private keys in the store for an envelope's
 * recipients (EnvelopedData or AuthEnvelopedData ContentInfo, DER/BER), found by
 * each RecipientInfo's identifier (RFC 5652 6.2) whatever the certificate's
 * expiry or the key's status (key history).
 */
import { parseEnvelopeFromContentInfo } from '../cms/enveloped-data/parse.ts';
import { recipientIdentifiers } from '../cms/recipients/recipient-info.ts';
import type { Limits } from '../limits.ts';
import type { Store } from './store.ts';
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';

export async function findEnvelopeKeys(store: Store, envelope: Uint8Array, limits?: Partial<Limits>): Promise<{ key: KeyObject; certificate: Certificate }[]> {
  const parsed = parseEnvelopeFromContentInfo(envelope, limits);
  return store.findDecryptionKeys(parsed.recipients.flatMap(recipientIdentifiers));
}
