/** A structured logger, object first: `logger.info({ userId }, "user created")`. pino fits. */
export interface Logger {
  debug(objectOrMessage: unknown, message?: string): void;
  info(objectOrMessage: unknown, message?: string): void;
  warn(objectOrMessage: unknown, message?: string): void;
  error(objectOrMessage: unknown, message?: string): void;
  /** A logger that adds `bindings` to every line (pino's `child`); used for handlers' `logger` with the run's ids. (Optional) */
  child?(bindings: Record<string, unknown>): Logger;
}

/** A logger that writes to the console with a `[stepwise]` prefix. */
export const consoleLogger: Logger = {
  debug: (objectOrMessage, message) => console.debug(...args(objectOrMessage, message)),
  info: (objectOrMessage, message) => console.info(...args(objectOrMessage, message)),
  warn: (objectOrMessage, message) => console.warn(...args(objectOrMessage, message)),
  error: (objectOrMessage, message) => console.error(...args(objectOrMessage, message)),
};

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function args(objectOrMessage: unknown, message?: string): unknown[] {
  return message === undefined ? [objectOrMessage] : [message, objectOrMessage];
}
