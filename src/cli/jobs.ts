/**
 * Job factories by name: what a batch worker needs to rebuild a command's job
 * from plain-data options. Each job module is imported on first use, so that
 * `--help`, usage errors and each worker load only what they run.
 */
import { KakitomeError } from '../errors.ts';
import type { Job, JobName } from './job.ts';
import type { SignJobOptions } from './jobs/sign-job.ts';
import type { VerifyJobOptions } from './jobs/verify-job.ts';
import type { EncryptJobOptions } from './jobs/encrypt-job.ts';
import type { DecryptJobOptions } from './jobs/decrypt-job.ts';

export async function createJob(name: JobName, options: unknown): Promise<Job> {
  switch (name) {
    case 'sign': return (await import('./jobs/sign-job.ts')).createSignJob(options as SignJobOptions);
    case 'verify': return (await import('./jobs/verify-job.ts')).createVerifyJob(options as VerifyJobOptions);
    case 'encrypt': return (await import('./jobs/encrypt-job.ts')).createEncryptJob(options as EncryptJobOptions);
    case 'decrypt': return (await import('./jobs/decrypt-job.ts')).createDecryptJob(options as DecryptJobOptions);
  }
  throw new KakitomeError('INVALID_ARGUMENT', `Unknown job ${String(name)}.`);
}
