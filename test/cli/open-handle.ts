/**
 * Preloaded (`node --import`) into a CLI process by launcher-natural-end.test.ts:
 * an interval that is never cleared, a handle that keeps the event loop alive after
 * the command's work is done, as a forgotten socket or timer would.
 */
setInterval(() => {}, 1_000);
