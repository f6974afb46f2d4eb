/**
 * A PostgreSQL connection URL (--database-url, KAKITOME_DATABASE_URL) as the
 * command line may print it: where the store is, never a password, neither the
 * URL's own (user:PASSWORD@) nor one in its query (password=, sslpassword=).
 */
export function describeDatabaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not a URL the printer can take apart: printed whole it could show a password.
    return 'the PostgreSQL database of --database-url (or KAKITOME_DATABASE_URL)';
  }
  u.password = '';
  const secrets = [...u.searchParams.keys()].filter((k) => /pass/i.test(k));
  for (const k of secrets) u.searchParams.delete(k);
  return u.toString();
}
