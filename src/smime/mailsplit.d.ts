/**
 * The part of mailsplit's API (nodemailer family, plain JavaScript without
 * published types) that sign-message-stream.ts uses.
 */
declare module 'mailsplit' {
  import type { Transform } from 'node:stream';
  interface SplitterOptions {
    /** Largest header section of one node (EMAXLEN beyond it). */
    maxHeadSize?: number;
    /** Most MIME nodes in one message (EMAXLEN beyond it). */
    maxChildNodes?: number;
    /** Do not descend into message/rfc822 parts. */
    ignoreEmbedded?: boolean;
  }
  const mailsplit: {
    Splitter: new (options?: SplitterOptions) => Transform;
    Joiner: new () => Transform;
  };
  export default mailsplit;
}
