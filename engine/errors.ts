/**
 * Every error sluice raises on purpose carries a stable `code` that the wire contract
 * names, and a `reason` beneath it from ERROR_REASONS (../docs/errors.md lists both; a
 * test keeps the doc, the table and the code in step). Clients see `code` and `message`
 * on the wire; the SDK's own errors carry a reason too.
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

/**
 * The finer causes beneath each wire code, for logs, tests and SDK users who care why. Each
 * code's own name is its generic reason. docs/errors.md lists every reason under its code,
 * and test/common/errors-doc.test.ts keeps that file, this table and the reasons used in
 * src/ and engine/ in step. A new reason goes here first; the compiler then accepts it.
 */
export const ERROR_REASONS = {
  BAD_REQUEST: [
    'BAD_REQUEST',
    // requests
    'BAD_TOPIC_NAME',
    'BAD_PARTITION',
    'BAD_PARTITIONS',
    'BAD_RETENTION',
    'BAD_OFFSET',
    'BAD_LIMIT',
    'BAD_RANGE',
    'BAD_REPLAY_REQUEST',
    'TOPIC_EXISTS',
    'ALREADY_SUBSCRIBED',
    'TOO_MANY_SUBSCRIPTIONS',
    'TOO_MANY_TOPICS',
    'BAD_FRAME',
    'BAD_CONFIG',
    // record batches
    'CORRUPT_BATCH',
    'BAD_LENGTH',
    'BAD_MAGIC',
    'CRC_MISMATCH',
    'BAD_ATTRIBUTES',
    'BAD_CODEC',
    'BAD_LZ4',
    'BAD_VARINT',
    'BAD_COUNT',
    'BAD_OFFSET_DELTA',
    'BAD_TIMESTAMP',
    'TIMESTAMP_IN_FUTURE',
    'EMPTY_BATCH',
    'TRUNCATED',
    'TRAILING_BYTES',
    'OFFSET_GAP',
  ],
  UNAUTHORIZED: [
    'UNAUTHORIZED',
    'TOKEN_MISSING',
    'TOKEN_MALFORMED',
    'TOKEN_TOO_LONG',
    'TOKEN_AMBIGUOUS',
    'TOKEN_EXPIRED',
    'TOKEN_NOT_YET_VALID',
    'BAD_SIGNATURE',
    'ALG_NOT_ALLOWED',
    'UNKNOWN_KEY',
    'BAD_CLAIMS',
    'BAD_ACL',
  ],
  FORBIDDEN: ['FORBIDDEN', 'ACL_DENIED', 'ORIGIN_NOT_ALLOWED'],
  UNKNOWN_TOPIC: ['UNKNOWN_TOPIC', 'TOPIC_DELETED'],
  OFFSET_OUT_OF_RANGE: ['OFFSET_OUT_OF_RANGE'],
  TOO_LARGE: ['TOO_LARGE', 'FRAME_TOO_LARGE', 'RECORD_TOO_LARGE', 'TOO_MANY_HEADERS', 'BATCH_DECODED_TOO_LARGE'],
  RATE_LIMITED: ['RATE_LIMITED'],
  UNAVAILABLE: [
    'UNAVAILABLE',
    // the server's state
    'SHUTTING_DOWN',
    'CLOSED',
    'DATA_DIR_LOCKED',
    'TOPIC_METADATA_UNREADABLE',
    'OFFSETS_UNREADABLE',
    'REPLAYS_IN_FLIGHT',
    'UWS_NOT_NATIVE',
    // cluster mode
    'CLUSTER_UNAVAILABLE',
    'CLUSTER_DATA_DIR',
    'PORT_IN_USE',
    'LISTEN_FAILED',
    // storage
    'DISK_FULL',
    'IO_ERROR',
    'FSYNC_FAILED',
    'CORRUPT_STORED_BATCH',
    'TOO_MANY_OPEN_FILES',
    // sendfile(2) transfers
    'SENDFILE_ARGUMENT',
    'SENDFILE_ABORTED',
    'SENDFILE_BUSY',
    'SENDFILE_RANGE',
    'SENDFILE_SHORT_FILE',
    'SENDFILE_UNAVAILABLE',
    'SENDFILE_CLOSED',
    'SENDFILE_IO',
    // the SDK, when no answer came from the server
    'DISCONNECTED',
    'TIMEOUT',
    'QUEUE_FULL',
    'CONNECTION_CLOSED',
  ],
  INTERNAL: ['INTERNAL', 'PROTOCOL'],
} as const satisfies { readonly [C in ErrorCode]: readonly [C, ...string[]] };

export type ReasonOf<C extends ErrorCode> = (typeof ERROR_REASONS)[C][number];
export type ErrorReason = ReasonOf<ErrorCode>;

export class SluiceError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  /** A finer cause, e.g. `CRC_MISMATCH`, from ERROR_REASONS[code]; stable, not part of the wire. */
  readonly reason: ReasonOf<C>;

  constructor(code: C, message: string, reason?: ReasonOf<C>) {
    super(message);
    this.name = 'SluiceError';
    this.code = code;
    this.reason = reason ?? (code as ReasonOf<C>);
  }
}

/** A record batch that is not what its bytes claim: bad length, magic, CRC, varint or codec. */
export class CorruptBatchError extends SluiceError<'BAD_REQUEST'> {
  constructor(message: string, reason: ReasonOf<'BAD_REQUEST'> = 'CORRUPT_BATCH') {
    super('BAD_REQUEST', message, reason);
    this.name = 'CorruptBatchError';
  }
}

export class UnknownTopicError extends SluiceError<'UNKNOWN_TOPIC'> {
  constructor(topic: string) {
    super('UNKNOWN_TOPIC', `unknown topic ${JSON.stringify(topic)}`);
    this.name = 'UnknownTopicError';
  }
}

export class OffsetOutOfRangeError extends SluiceError<'OFFSET_OUT_OF_RANGE'> {
  constructor(message: string) {
    super('OFFSET_OUT_OF_RANGE', message);
    this.name = 'OffsetOutOfRangeError';
  }
}

export class BadRequestError extends SluiceError<'BAD_REQUEST'> {
  constructor(message: string, reason: ReasonOf<'BAD_REQUEST'> = 'BAD_REQUEST') {
    super('BAD_REQUEST', message, reason);
    this.name = 'BadRequestError';
  }
}

/** A limit crossed (record, frame or batch bytes): the RangeError of the wire. */
export class TooLargeError extends SluiceError<'TOO_LARGE'> {
  constructor(message: string, reason: ReasonOf<'TOO_LARGE'> = 'TOO_LARGE') {
    super('TOO_LARGE', message, reason);
    this.name = 'TooLargeError';
  }
}

/** The log cannot take writes now (disk full, closed, I/O error); nothing was stored. */
export class UnavailableError extends SluiceError<'UNAVAILABLE'> {
  constructor(message: string, reason: ReasonOf<'UNAVAILABLE'> = 'UNAVAILABLE') {
    super('UNAVAILABLE', message, reason);
    this.name = 'UnavailableError';
  }
}

export class TopicExistsError extends SluiceError<'BAD_REQUEST'> {
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

/** True for the errors of a process (EMFILE) or system (ENFILE) out of descriptors. */
export function isFdExhaustion(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/** A failed file operation of the log as the wire sees it: UNAVAILABLE, with why. */
export function storageError(err: unknown, what: string): UnavailableError {
  if (err instanceof UnavailableError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = isFdExhaustion(err) ? 'TOO_MANY_OPEN_FILES' : e.code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR';
  return new UnavailableError(`${what}: ${e.code ?? e.message}`, reason);
}
