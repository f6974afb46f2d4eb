/**
 * The verify job: builds the signer validator over the --ca anchors once, then
 * verifies message after message. OUT is produced only for a trusted verdict.
 */
import { verifyMessage } from '../../smime/verify-message.ts';
import { EXIT_OK, exitCodeForVerdict } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { createCliValidator } from '../create-cli-validator.ts';
import type { TrustOptions } from '../commands/trust-options.ts';
import { viewVerdict } from '../verdict-view.ts';

export type VerifyJobOptions = TrustOptions;

export async function createVerifyJob(o: VerifyJobOptions): Promise<Job> {
  const validateSigner = await createCliValidator(o);
  return async (message) => {
    const verdict = await verifyMessage(message, { validateSigner });
    const exitCode = exitCodeForVerdict(verdict);
    return {
      exitCode,
      verdict: viewVerdict(verdict),
      // An unverified message is never handed on as if it were verified.
      ...(exitCode === EXIT_OK ? { output: verdict.output } : {}),
    };
  };
}
