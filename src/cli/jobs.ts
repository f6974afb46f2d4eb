/**
 * Job factories by name: what a batch worker needs to rebuild a command's job
 * from plain-data options.
 */
import { KakitomeError } from '../errors.ts';
import type { Job, JobName } from './job.ts';
import { createSignJob, type SignJobOptions } from './commands/sign.ts';
import { createVerifyJob, type VerifyJobOptions } from './commands/verify.ts';
import { createEncryptJob, type EncryptJobOptions } from './commands/encrypt.ts';
import { createDecryptJob, type DecryptJobOptions } from './commands/decrypt.ts';

export function createJob(name: JobName, options: unknown): Promise<Job> {
  switch (name) {
    case 'sign': return createSignJob(options as SignJobOptions);
    case 'verify': return createVerifyJob(options as VerifyJobOptions);
    case 'encrypt': return createEncryptJob(options as EncryptJobOptions);
    case 'decrypt': return createDecryptJob(options as DecryptJobOptions);
  }
  throw new KakitomeError('INVALID_ARGUMENT', `Unknown job ${String(name)}.`);
}
