/**
 * A browser's cookie jar and form posting, enough for the console's tests without
 * a browser: cookies kept per name, forms URL-encoded (or multipart from a
 * FormData), Origin sent on unsafe methods as a browser on the console would
 * (override it, or pass null to leave it out, to play a forged request).
 */
export const TEST_PASSWORD = 'correct horse battery';

export class ConsoleClient {
  readonly cookies = new Map<string, string>();
  readonly headers: Record<string, string>;
  readonly #base: () => { url: string; origin: string };

  constructor(base: () => { url: string; origin: string }, headers: Record<string, string> = {}) {
    this.#base = base;
    this.headers = headers;
  }

  async request(path: string, init: { method?: string; form?: Record<string, string | string[]> | FormData; headers?: Record<string, string>; origin?: string | null } = {}): Promise<Response> {
    const { url, origin } = this.#base();
    const method = init.method ?? (init.form ? 'POST' : 'GET');
    const headers: Record<string, string> = { ...this.headers, ...init.headers };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (method !== 'GET' && init.origin !== null) headers.origin = init.origin ?? origin;
    let body: string | FormData | undefined;
    if (init.form instanceof FormData) body = init.form;
    else if (init.form) {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(init.form)) for (const x of [v].flat()) p.append(k, x);
      body = p.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    let res: Response | undefined;
    // A pooled connection the server closed as idle (keepAliveTimeout, 5 s) while the
    // request was on its way resets before the server read anything: a loaded machine
    // hits that race between slow steps. Such a request is sent again, once.
    for (let attempt = 0; !res; attempt++) {
      try {
        res = await fetch(new URL(path, url), { method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
      } catch (e) {
        const code = ((e as Error).cause as { code?: string } | undefined)?.code;
        if (attempt === 0 && code === 'ECONNRESET') continue;
        throw new Error(`${method} ${path}: ${(e as Error).message} ${String((e as Error).cause)}`, { cause: e });
      }
    }
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, value] = pair!.split('=');
      if (/max-age=0/i.test(c)) this.cookies.delete(name!);
      else this.cookies.set(name!, value!);
    }
    return res;
  }

  signIn(email: string, password = TEST_PASSWORD): Promise<Response> {
    return this.request('/sign-in', { form: { email, password, next: '/' } });
  }
}
