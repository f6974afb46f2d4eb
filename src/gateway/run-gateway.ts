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
  // The signals are caught before anything starts: starting (the store, the crypto
  // threads, the listeners) takes seconds on a loaded machine, and a SIGTERM in that
  // time ended the process by the signal's default action (status 143, a failed stop
  // to systemd) with the listener perhaps already taking a message; a SIGHUP killed it.
  // A stop asked for while starting runs as soon as the gateway is up; a reload is moot
  // (the policy file is read by the start itself).
  let onStop = (signal: string) => { stopAsked ??= signal; };
  let onReload = () => {};
  let stopAsked: string | undefined;
  const term = () => onStop('SIGTERM');
  const int = () => onStop('SIGINT');
  const hup = () => onReload();
  process.once('SIGTERM', term);
  process.once('SIGINT', int);
  process.on('SIGHUP', hup);
  const forgetSignals = () => {
    process.off('SIGTERM', term);
    process.off('SIGINT', int);
    process.off('SIGHUP', hup);
  };
  let store;
  let gateway;
  try {
    store = await openStore({ ...location, actor: 'gateway', env: {} });
    gateway = await startGateway(config, store, log, location);
  } catch (e) {
    forgetSignals();
    await store?.close();
    throw e;
  }
  const running = gateway;
  const opened = store;
  return new Promise<number>((resolve) => {
    let stopping = false;
    onStop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log('signal', { signal });
      void running.stop().finally(async () => {
        forgetSignals();
        await opened.close().catch(() => {});
        resolve(0);
      });
    };
    onReload = () => {
      log('signal', { signal: 'SIGHUP' });
      void running.reload();
    };
    if (stopAsked) onStop(stopAsked);
  });
}
