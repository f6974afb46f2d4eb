/**
 * The gateway in the foreground, as `kakitome gateway` runs it: opens the store,
 * starts the listener, and lives until SIGTERM or SIGINT (stop accepting, finish
 * what is in flight, close the store, resolve 0). SIGHUP reloads the policy file.
 * The returned promise settles only then: the command exits with it.
 */
import { openStore } from '../store/open-store.ts';
import { createGatewayLog, type GatewayLog } from './gateway-log.ts';
import { startGateway, type GatewayConfig, type WorkerStore } from './start-gateway.ts';

/** `location`: where the store is and its master key, opened here and by each crypto worker. */
export async function runGateway(config: GatewayConfig, location: WorkerStore, log: GatewayLog = createGatewayLog()): Promise<number> {
  const store = await openStore({ ...location, actor: 'gateway', env: {} });
  let gateway;
  try {
    gateway = await startGateway(config, store, log, location);
  } catch (e) {
    await store.close();
    throw e;
  }
  const running = gateway;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log('signal', { signal });
      void running.stop().finally(async () => {
        process.off('SIGHUP', reload);
        await store.close().catch(() => {});
        resolve(0);
      });
    };
    const reload = () => {
      log('signal', { signal: 'SIGHUP' });
      void running.reload();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', reload);
  });
}
