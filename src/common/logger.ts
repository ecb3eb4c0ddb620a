/** Structured JSON logs on stderr (stdout carries the `listening` line and CLI output). */
import pino from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string = process.env.SLUICE_LOG_LEVEL ?? 'info'): pino.Logger {
  return pino({ name: 'sluice', level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
