/**
 * What every console handler shares: the service's context (store, rate limiter,
 * log, configuration), the console's directories over the same store, the
 * one-time downloads and where the console is served from. Passed in, never
 * global; a test builds one around its own store and clock.
 */
import type { Context } from 'hono';
import type { Store } from '../../store/store.ts';
import type { ConsoleLanguage, Person } from '../../store/people-directory.ts';
import { PeopleDirectory } from '../../store/people-directory.ts';
import { ConsoleSessions, DEFAULT_SESSION_POLICY, type SessionPolicy } from '../../store/console-sessions.ts';
import type { LdapSource } from '../../store/lookup-ldap-certificates.ts';
import type { Argon2Parameters } from '../../keys/password-hash.ts';
import { OrganisationSettings } from '../../store/organisation-settings.ts';
import type { ConsoleMailConfig } from '../config.ts';
import type { RequestState, ServiceContext } from '../service-context.ts';
import type { ConsoleOrigin } from './console-origin.ts';
import { Handovers, type HandoverStore } from './handovers.ts';
import type { Messages } from './messages/en.ts';
import { OidcSignIn, type ConsoleOidcConfig } from './oidc-sign-in.ts';
import { DEFAULT_STEP_UP_WINDOW_MS } from './step-up.ts';
import { KakitomeError } from '../../errors.ts';

/** Largest message the check page reads (the form around it adds a little). */
export const DEFAULT_CHECK_MAX_BYTES = 10 * 1024 * 1024;
/** Largest ordinary form (sign-in, settings...). */
export const FORM_MAX_BYTES = 64 * 1024;
/** Largest setup form (it may carry the CA's PKCS#12 file). */
export const SETUP_MAX_BYTES = 256 * 1024;

/** Requests per minute, per client address unless said otherwise. */
export interface ConsoleRates {
  signInPerAddress: number;
  signInPerAccount: number;
  linkPerAddress: number;
  checkPerAddress: number;
  issuePerPerson: number;
  lookupPerPerson: number;
  /** Step-up re-authentication attempts, per person (step-up.ts). */
  stepUpPerPerson: number;
}

export const DEFAULT_CONSOLE_RATES: ConsoleRates = {
  signInPerAddress: 20,
  signInPerAccount: 10,
  linkPerAddress: 10,
  checkPerAddress: 30,
  issuePerPerson: 5,
  lookupPerPerson: 30,
  stepUpPerPerson: 5,
};

export interface ConsoleOptions {
  sessionPolicy?: SessionPolicy;
  checkMaxBytes?: number;
  rates?: Partial<ConsoleRates>;
  /** The Argon2id cost of password hashes (default password-hash.ts's). */
  passwordHash?: Argon2Parameters;
  /** A directory "can I send encrypted mail to ...?" asks when the store has no certificate. */
  ldap?: LdapSource;
  /** Where one-time downloads are held (default: in this thread). */
  handovers?: HandoverStore;
  /** The relay and From address of the console's mail (sign-in links, invitations); none: links are shown, not mailed. */
  mail?: ConsoleMailConfig;
  /** Single sign-on by OpenID Connect; none: no "company account" button. */
  oidc?: ConsoleOidcConfig;
  /** How long a step-up proof holds (default step-up.ts's 5 minutes). */
  stepUpWindowMs?: number;
}

export interface ConsoleContext {
  service: ServiceContext;
  people: PeopleDirectory;
  sessions: ConsoleSessions;
  organisation: OrganisationSettings;
  handovers: HandoverStore;
  /** Where the console is served from: set once the server listens (its port may be 0 until then). */
  origin: ConsoleOrigin;
  checkMaxBytes: number;
  rates: ConsoleRates;
  /** How long a step-up proof holds, for the session that made it (step-up.ts). */
  stepUpWindowMs: number;
  ldap?: LdapSource;
  mail?: ConsoleMailConfig;
  oidc?: OidcSignIn;
  /** The configured issuer (for the audit log). */
  oidcIssuer?: string;
}

/** A step-up window of 1 minute to 1 hour: longer is a second session lifetime, not a re-authentication. */
function checkStepUpWindow(ms: number): number {
  if (!Number.isInteger(ms) || ms < 60_000 || ms > 3_600_000) throw new KakitomeError('INVALID_ARGUMENT', `The step-up window ${ms} ms is not 1 to 60 minutes.`);
  return ms;
}

export function createConsoleContext(service: ServiceContext, origin: ConsoleOrigin, o: ConsoleOptions = {}): ConsoleContext {
  const people = new PeopleDirectory(service.store, { ...(o.passwordHash ? { passwordHash: o.passwordHash } : {}) });
  return {
    service, people,
    sessions: new ConsoleSessions(service.store, people, o.sessionPolicy ?? DEFAULT_SESSION_POLICY),
    organisation: new OrganisationSettings(service.store),
    handovers: o.handovers ?? new Handovers(),
    origin,
    checkMaxBytes: o.checkMaxBytes ?? DEFAULT_CHECK_MAX_BYTES,
    rates: { ...DEFAULT_CONSOLE_RATES, ...o.rates },
    stepUpWindowMs: checkStepUpWindow(o.stepUpWindowMs ?? DEFAULT_STEP_UP_WINDOW_MS),
    ...(o.ldap ? { ldap: o.ldap } : {}),
    ...(o.mail ? { mail: o.mail } : {}),
    ...(o.oidc ? { oidc: new OidcSignIn(o.oidc), oidcIssuer: o.oidc.issuer } : {}),
  };
}

/** What a page knows about the request it answers. */
export interface ConsoleView {
  lang: ConsoleLanguage;
  t: Messages;
  person?: Person;
  /** The session cookie's secret, for sign-out. */
  sessionSecret?: string;
  /** The request path (navigation). */
  path: string;
  /** Where the language switch returns to: this page for a GET, else the start page. */
  back: string;
  organisation: string;
  /** The client's address, for rate limits (the socket's peer; never a forwarded header). */
  client: string;
}

/** The store, people and organisation acting for the signed-in person (their name in the audit log). */
export function actingFor(cx: ConsoleContext, v: ConsoleView): { store: Store; people: PeopleDirectory; organisation: OrganisationSettings } {
  const store = cx.service.store.actingAs(v.person ? `console:${v.person.email}` : 'console');
  return { store, people: cx.people.actingFor(store), organisation: new OrganisationSettings(store) };
}

export type ConsoleEnv = { Variables: { state: RequestState } };
export type ConsoleHandler = (c: Context<ConsoleEnv>, cx: ConsoleContext, v: ConsoleView) => Promise<Response>;
