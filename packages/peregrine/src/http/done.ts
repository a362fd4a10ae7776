/**
 * The promise Peregrine's servers return for response work they finished at once
 * (`complete()`, `write()` into room, `start()` with no onStarting callbacks). It is
 * always the same object, so a caller that only needs to know when the work is done
 * can compare by identity and skip a `then`, which costs a promise and a microtask
 * per request. Other servers return promises of their own, which are awaited as usual.
 */
export const DONE: Promise<void> = Promise.resolve();
