/** The text of a console mail the SMTP sink received (base64 body, console-mail.ts) and its header section. */
export function readMail(message: Buffer): { headers: string; text: string } {
  const raw = message.toString('latin1');
  const split = raw.indexOf('\r\n\r\n');
  return { headers: raw.slice(0, split), text: Buffer.from(raw.slice(split + 4), 'base64').toString('utf8') };
}
