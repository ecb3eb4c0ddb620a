/**
 * Topic names: `^[a-zA-Z0-9._-]{1,249}$` except `.` and `..` (the wire contract, §1).
 * With no `/` and no bare dot names allowed, `<dataDir>/<topic>-<partition>` can never
 * leave the data directory.
 */
import { BadRequestError } from './errors.ts';
import { topicNameLengthMax } from './limits.ts';

const TOPIC_RE = /^[a-zA-Z0-9._-]+$/;

export function isValidTopicName(name: unknown): name is string {
  return typeof name === 'string' && name.length >= 1 && name.length <= topicNameLengthMax && TOPIC_RE.test(name) && name !== '.' && name !== '..';
}

export function assertTopicName(name: unknown): asserts name is string {
  if (!isValidTopicName(name)) {
    throw new BadRequestError(`invalid topic name ${JSON.stringify(String(name).slice(0, 300))}: 1-249 of [a-zA-Z0-9._-], not "." or ".."`, 'BAD_TOPIC_NAME');
  }
}
