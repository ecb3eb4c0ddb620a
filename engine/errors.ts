/**
 * Every error sluice raises on purpose carries a stable `code` that the wire contract
 * names (../docs/errors.md lists them all; a test keeps the two in step). `reason` is a
 * finer, internal cause for logs and tests; clients only ever see `code` and `message`.
 *
 * Pure TypeScript with no Node API: the browser SDK shares it through the codec.
 */

export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'UNKNOWN_TOPIC',
  'OFFSET_OUT_OF_RANGE',
  'TOO_LARGE',
  'RATE_LIMITED',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class SluiceError extends Error {
  readonly code: ErrorCode;
  /** A finer cause, e.g. `CRC_MISMATCH`; stable enough for tests, not part of the wire. */
  readonly reason: string;

  constructor(code: ErrorCode, message: string, reason: string = code) {
    super(message);
    this.name = 'SluiceError';
    this.code = code;
    this.reason = reason;
  }
}

/** A record batch that is not what its bytes claim: bad length, magic, CRC, varint or codec. */
export class CorruptBatchError extends SluiceError {
  constructor(message: string, reason: string = 'CORRUPT_BATCH') {
    super('BAD_REQUEST', message, reason);
    this.name = 'CorruptBatchError';
  }
}

export class UnknownTopicError extends SluiceError {
  constructor(topic: string) {
    super('UNKNOWN_TOPIC', `unknown topic ${JSON.stringify(topic)}`);
    this.name = 'UnknownTopicError';
  }
}

export class OffsetOutOfRangeError extends SluiceError {
  constructor(message: string) {
    super('OFFSET_OUT_OF_RANGE', message);
    this.name = 'OffsetOutOfRangeError';
  }
}

export class BadRequestError extends SluiceError {
  constructor(message: string, reason: string = 'BAD_REQUEST') {
    super('BAD_REQUEST', message, reason);
    this.name = 'BadRequestError';
  }
}

/** A limit crossed (record, frame or batch bytes): the RangeError of the wire. */
export class TooLargeError extends SluiceError {
  constructor(message: string) {
    super('TOO_LARGE', message);
    this.name = 'TooLargeError';
  }
}

/** The log cannot take writes now (disk full, closed, I/O error); nothing was stored. */
export class UnavailableError extends SluiceError {
  constructor(message: string, reason: string = 'UNAVAILABLE') {
    super('UNAVAILABLE', message, reason);
    this.name = 'UnavailableError';
  }
}

export class TopicExistsError extends SluiceError {
  constructor(topic: string) {
    super('BAD_REQUEST', `topic ${JSON.stringify(topic)} already exists`, 'TOPIC_EXISTS');
    this.name = 'TopicExistsError';
  }
}

/** Any error as the wire sees it: a SluiceError as it is, anything else INTERNAL. */
export function asSluiceError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError('INTERNAL', (err as Error)?.message ?? String(err), 'INTERNAL');
}
