/**
 * labelWith (process-inbound.ts): the Authentication-Results field it writes is
 * formatAuthenticationResults' for exactly this message's result, whether or not the
 * same field was written before (the fields are kept by everything they are made of),
 * and forged fields claiming our authserv-id are removed every time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelWith } from '../../src/gateway/process-inbound.ts';
import { formatAuthenticationResults, type SmimeAuthentication } from '../../src/gateway/authentication-results.ts';
import type { GatewayContext } from '../../src/gateway/gateway-context.ts';
import type { MethodResult } from '../../src/dkim/authenticate-sender.ts';

const ctx = { authservId: 'mx.corp.test' } as GatewayContext;
const message = Buffer.from('Authentication-Results: mx.corp.test; smime=pass (forged)\r\nFrom: carol@example.com\r\nSubject: hi\r\n\r\nbody\r\n', 'latin1');

function labelled(auth: SmimeAuthentication, senderAuth: MethodResult[] = []): string {
  return labelWith(ctx, message, auth, senderAuth).toString('latin1');
}

function expected(auth: SmimeAuthentication, senderAuth: MethodResult[] = []): string {
  return `${formatAuthenticationResults('mx.corp.test', auth, senderAuth).toString('latin1')}From: carol@example.com\r\nSubject: hi\r\n\r\nbody\r\n`;
}

test('each message gets the field of its own result, the same bytes the second time, the forged field removed', () => {
  const pass: SmimeAuthentication = { result: 'pass', reason: 'Signed by carol@example.com.', signer: { email: 'carol@example.com', serial: '01AB' } };
  const variants: SmimeAuthentication[] = [
    pass,
    { ...pass, signer: { email: 'carol@example.com', serial: '01AC' } },
    { ...pass, signer: { email: 'carol@example.org', serial: '01AB' } },
    { ...pass, reason: 'Signed by carol@example.com!' },
    { result: 'fail', code: 'BAD_SIG', reason: 'Signed by carol@example.com.', signer: { email: 'carol@example.com', serial: '01AB' } },
    { result: 'neutral', code: 'CERT_UNTRUSTED', reason: 'Signed by carol@example.com.', signer: { email: 'carol@example.com', serial: '01AB' } },
    { result: 'none', reason: 'Signed by carol@example.com.' },
    // Field boundaries a joined key could blur: the address and serial shifted into each other.
    { result: 'pass', reason: 'r', signer: { email: 'a\nb', serial: 'c' } },
    { result: 'pass', reason: 'r', signer: { email: 'a', serial: 'b\nc' } },
  ];
  for (let round = 0; round < 2; round++) {
    for (const auth of variants) assert.equal(labelled(auth), expected(auth), `round ${round}: ${JSON.stringify(auth)}`);
  }
  const texts = new Set(variants.map((a) => labelled(a)));
  assert.equal(texts.size, variants.length, 'no two results share a field');
});

test('sender authentication results are written for each message as they are', () => {
  const auth: SmimeAuthentication = { result: 'pass', reason: 'Signed by carol@example.com.', signer: { email: 'carol@example.com', serial: '01AB' } };
  const dmarc = (result: string): MethodResult[] => [{ method: 'dmarc', result, properties: [['header.from', 'example.com']] } as MethodResult];
  assert.equal(labelled(auth, dmarc('pass')), expected(auth, dmarc('pass')));
  assert.equal(labelled(auth, dmarc('fail')), expected(auth, dmarc('fail')));
  assert.notEqual(labelled(auth, dmarc('fail')), labelled(auth));
});
