/** The slice of a pino logger the engine uses, so engine/ needs no logging library of its own. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
