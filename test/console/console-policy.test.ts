/**
 * The gateway policy on the console: each setting in force for an address with
 * the level that set it (global <- domain <- address), changes checked as
 * `kakitome policy set` checks them (audited), and `explain` saying what
 * `kakitome gateway explain` says, by the same library on the same store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { explainDecision, formatExplanation } from '../../src/gateway/explain-decision.ts';
import { createGatewayContext } from '../../src/gateway/gateway-context.ts';
import { PolicyDirectory } from '../../src/store/policy-directory.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
});

/** The value and source cells of one setting's row. */
function row(html: string, setting: string): { value: string; source: string } {
  const m = new RegExp(`<tr data-setting="${setting}">[\\s\\S]*?</td><td><code>([^<]*)</code></td><td data-source>([^<]*)</td>`).exec(html);
  assert.ok(m, `no row for ${setting}`);
  return { value: m[1]!.replaceAll('&quot;', '"'), source: m[2]! };
}

const set = (level: string, name: string, setting: string, value: string, action = 'set') => ({ level, name, setting, value, action });

test('the policy in force for an address, each value with the level that set it; changes checked like policy set and audited', async () => {
  const admin = await fx.client('admin');
  let html = await (await admin.request('/admin/policy?for=user@example.co.jp')).text();
  assert.deepEqual(row(html, 'encrypt'), { value: '"if-possible"', source: 'default' });

  assert.equal((await admin.request('/admin/policy', { form: set('domain', 'example.co.jp', 'encrypt', 'required') })).status, 200);
  assert.equal((await admin.request('/admin/policy', { form: set('address', 'user@example.co.jp', 'hideSubject', 'true') })).status, 200);
  assert.equal((await admin.request('/admin/policy', { form: set('global', '', 'subjectTriggers', '[secure]\n[暗号化]\n') })).status, 200);
  html = await (await admin.request('/admin/policy?for=user@example.co.jp')).text();
  assert.deepEqual(row(html, 'encrypt'), { value: '"required"', source: 'domain example.co.jp' });
  assert.deepEqual(row(html, 'hideSubject'), { value: 'true', source: 'address user@example.co.jp' });
  assert.deepEqual(row(html, 'subjectTriggers'), { value: '["[secure]","[暗号化]"]', source: 'global' });
  html = await (await admin.request('/admin/policy?for=someone@other.example')).text();
  assert.deepEqual(row(html, 'encrypt'), { value: '"if-possible"', source: 'default' });
  // A domain's own policy: its level over global (the hint says "a mail address or a domain").
  html = await (await admin.request('/admin/policy?for=example.co.jp')).text();
  assert.deepEqual(row(html, 'encrypt'), { value: '"required"', source: 'domain example.co.jp' });
  assert.deepEqual(row(html, 'hideSubject'), { value: 'false', source: 'default' }, 'an address\'s level is not the domain\'s');
  assert.deepEqual(row(html, 'subjectTriggers'), { value: '["[secure]","[暗号化]"]', source: 'global' });
  assert.ok((await fx.store.auditLog({ object: 'domain example.co.jp' })).some((e) => e.action === 'policy.set' && e.actor === `console:${ROLE_PEOPLE.admin!.email}`));

  // Refused as the CLI refuses, and nothing stored.
  const revision = await new PolicyDirectory(fx.store).revision();
  for (const [form, text] of [
    [set('domain', 'example.co.jp', 'encrypt', 'sometimes'), /"encrypt" must be "never", "if-possible" or "required"/],
    [set('domain', 'example.co.jp', 'maxConnections', '5'), /set at the global level only/],
    [set('domain', 'not a domain', 'sign', 'true'), /is not a mail domain/],
    [set('global', '', 'noSuchSetting', 'x'), /unknown setting "noSuchSetting"/],
    [set('planet', '', 'sign', 'true'), new RegExp(en.errors.badForm)],
  ] as const) {
    const r = await admin.request('/admin/policy', { form });
    assert.equal(r.status, 400);
    assert.match((await r.text()).replaceAll('&quot;', '"'), text);
  }
  assert.equal(await new PolicyDirectory(fx.store).revision(), revision);

  // Unset: the level above applies again.
  await admin.request('/admin/policy', { form: set('address', 'user@example.co.jp', 'hideSubject', '', 'unset') });
  html = await (await admin.request('/admin/policy?for=user@example.co.jp')).text();
  assert.deepEqual(row(html, 'hideSubject'), { value: 'false', source: 'default' });
});

test('roles: auditors and helpdesk read, only administrators change; explain for administrators and helpdesk', async () => {
  for (const role of ['auditor', 'helpdesk'] as const) {
    const b = await fx.client(role);
    const page = await b.request('/admin/policy');
    assert.equal(page.status, 200, role);
    assert.ok(!(await page.text()).includes('method="post" action="/admin/policy"'), `${role}: no edit form`);
    assert.equal((await b.request('/admin/policy', { form: set('global', '', 'sign', 'false') })).status, 403, role);
  }
  assert.equal((await (await fx.client('auditor')).request('/admin/policy/explain?from=a@example.co.jp&to=b@example.com')).status, 403);
  for (const role of ['officer', 'user'] as const) assert.equal((await (await fx.client(role)).request('/admin/policy')).status, 403, role);
  assert.equal((await new PolicyDirectory(fx.store).load()).levels.global.sign, undefined, 'nobody changed sign');
});

test('explain says what kakitome gateway explain says (same library, same store)', async () => {
  const helpdesk = await fx.client('helpdesk');
  const q = new URLSearchParams({ from: 'user@example.co.jp', to: 'partner@other.example, officer@example.co.jp', subject: '[secure] contract' });
  const r = await helpdesk.request(`/admin/policy/explain?${q}`);
  assert.equal(r.status, 200);
  const html = await r.text();
  const shown = [...html.matchAll(/<p>([^<]*)<\/p>/g)].map((m) => m[1]!.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&'));
  const ctx = await createGatewayContext(fx.store, await new PolicyDirectory(fx.store).load(), 'explain', new Set(['example.co.jp']), { openKeys: false });
  const expected = formatExplanation(await explainDecision(ctx, { from: 'user@example.co.jp', to: ['partner@other.example', 'officer@example.co.jp'], subject: '[secure] contract' }));
  assert.ok(expected.length > 0);
  for (const line of expected) assert.ok(shown.includes(line), `missing: ${line}`);
  assert.ok(expected.some((l) => /partner@other\.example/.test(l)));
  // In Japanese: the same explanation, rendered from the same data in Japanese words; nothing left in English but names and values.
  const jaHtml = await (await helpdesk.request(`/admin/policy/explain?${q}`, { headers: { 'accept-language': 'ja' } })).text();
  const jaBox = jaHtml.slice(jaHtml.indexOf('data-explanation>'), jaHtml.indexOf('</div>', jaHtml.indexOf('data-explanation>')));
  const jaLines = [...jaBox.matchAll(/<p>([^<]*)<\/p>/g)].map((m) => m[1]!);
  assert.deepEqual(jaLines, formatExplanation(await explainDecision(ctx, { from: 'user@example.co.jp', to: ['partner@other.example', 'officer@example.co.jp'], subject: '[secure] contract' }), ja.policy.explainWords).map((l) => l.replaceAll('"', '&quot;').replaceAll("'", '&#39;')));
  assert.equal(jaLines.length, expected.length);
  assert.ok(jaLines.some((l) => l.startsWith('user@example.co.jp → partner@other.example：送信、')), jaLines.join('\n'));
  assert.ok(jaLines.some((l) => l.startsWith('暗号化トリガーがあります：件名 &quot;[secure]&quot;')), jaLines.join('\n'));
  assert.ok(jaLines.some((l) => /^user@example\.co\.jp のポリシー：$/.test(l)));
  for (const english of ['Triggers found', 'Policy of', ' -> ', 'sign:', 'encrypt:', 'is required by', 'inbound: decrypted', 'not encrypted', '(default)', 'global)']) {
    assert.ok(!jaLines.some((l) => l.includes(english)), `English left: ${english}`);
  }
  const empty = await helpdesk.request('/admin/policy/explain?from=&to=');
  assert.match(await empty.text(), new RegExp(en.policy.explainNeeds));
});
