/**
 * Which policy each inbound recipient's copy is made under (issue 13, "Policy"):
 * the recipient's own levels (global ← domain ← address). Recipients whose inbound
 * settings (revocation, subject tags, unauthenticated encryption) agree share one
 * copy; the others get a copy each way. The gateway (handle-message.ts) and
 * `kakitome gateway explain` both call this.
 */
import type { ResolvedPolicy } from '../policy/resolve-policy.ts';
import { SETTING_NAMES, SETTINGS } from '../policy/policy-settings.ts';
import type { GatewayContext } from './gateway-context.ts';

export interface InboundGroup {
  recipients: string[];
  /** The policy of the group's first recipient (the others' inbound settings are the same). */
  policy: ResolvedPolicy;
}

const INBOUND = SETTING_NAMES.filter((n) => SETTINGS[n].scope === 'inbound');

export function planInbound(ctx: GatewayContext, recipients: readonly string[]): InboundGroup[] {
  const groups = new Map<string, InboundGroup>();
  for (const recipient of recipients) {
    const policy = ctx.policyFor(recipient);
    const key = JSON.stringify(INBOUND.map((n) => policy.settings[n]));
    const g = groups.get(key);
    if (g) g.recipients.push(recipient);
    else groups.set(key, { recipients: [recipient], policy });
  }
  return [...groups.values()];
}
