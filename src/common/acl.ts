/**
 * Access control lists carried in a token's `acl` claim (wire contract §6):
 *
 *   "acl": {"pub": [patterns], "sub": [patterns], "admin"?: bool}
 *
 * "a pattern is a topic name, a prefix ending in `*`, or `*` (no other wildcard)".
 * So a pattern is one of
 *   - `orders.eu`   exactly that topic (must itself be a valid topic name),
 *   - `orders.*`    every topic whose name starts with `orders.` (the part before `*`
 *                   is 1-249 topic-name characters; `*` also matches nothing),
 *   - `*`           every topic.
 * Anything else (`*.eu`, `or*ders`, `orders.**`, `orders/eu`, ``) is invalid, and a token
 * with one invalid pattern is rejected whole: a typo must not silently grant or deny.
 *
 * `pub` and `sub` may be left out (= no topic); unknown keys in `acl` are refused so that a
 * misspelled `"Pub"` fails loudly instead of quietly denying everything. `admin` allows
 * creating and deleting topics; it does not imply `pub` or `sub` (a token that should do
 * everything says `"pub":["*"],"sub":["*"],"admin":true`).
 *
 * No Node API here: checks are pure functions over a compiled form, cached per ACL object.
 */
import { z } from 'zod';
import { SluiceError } from '../../engine/errors.ts';
import { topicNameLengthMax } from '../../engine/limits.ts';
import { isValidTopicName } from '../../engine/topic-name.ts';

/** At most this many patterns in each of `pub` and `sub`: a bound on the work per check. */
export const aclPatternsMax = 1024;

export type AclAction = 'pub' | 'sub' | 'admin';

/** Why a pattern is invalid, or null when it is valid. */
export function aclPatternProblem(pattern: string): string | null {
  if (pattern === '*') return null;
  const star = pattern.indexOf('*');
  if (star === -1) return isValidTopicName(pattern) ? null : 'not a valid topic name (1-249 of [a-zA-Z0-9._-], not "." or "..")';
  if (star !== pattern.length - 1) return '"*" is only allowed at the end';
  // The prefix of a pattern may be "." or ".." (e.g. `.*` matches `.hidden`): only whole
  // names are forbidden to be dots, so check the characters and the length, not the name.
  const prefix = pattern.slice(0, -1);
  if (!/^[a-zA-Z0-9._-]+$/.test(prefix) || prefix.length > topicNameLengthMax) return `the part before "*" must be 1-${topicNameLengthMax} of [a-zA-Z0-9._-]`;
  return null;
}

export function isValidAclPattern(pattern: string): boolean {
  return aclPatternProblem(pattern) === null;
}

const PatternSchema = z.string().superRefine((p, ctx) => {
  const problem = aclPatternProblem(p);
  if (problem) ctx.addIssue({ code: 'custom', message: `invalid pattern ${JSON.stringify(p.slice(0, 300))}: ${problem}` });
});

const PatternListSchema = z.array(PatternSchema).max(aclPatternsMax).default([]);

export const AclSchema = z
  .object({
    pub: PatternListSchema,
    sub: PatternListSchema,
    admin: z.boolean().optional(),
  })
  .strict();

export interface Acl {
  readonly pub: readonly string[];
  readonly sub: readonly string[];
  readonly admin?: boolean;
}

/** Parses an `acl` claim; throws SluiceError('UNAUTHORIZED', reason 'BAD_ACL') naming the first problems. */
export function parseAcl(value: unknown): Acl {
  if (value === undefined) throw new SluiceError('UNAUTHORIZED', 'token has no acl claim', 'BAD_ACL');
  const r = AclSchema.safeParse(value);
  if (!r.success) {
    const problems = r.error.issues.slice(0, 3).map((i) => {
      const where = ['acl', ...i.path.map(String)].join('.');
      return i.code === 'unrecognized_keys' ? `${where}: unknown key(s) ${i.keys.join(', ')}` : `${where}: ${i.message}`;
    });
    throw new SluiceError('UNAUTHORIZED', `token has an invalid acl claim: ${problems.join('; ')}`, 'BAD_ACL');
  }
  return r.data;
}

/** A pattern list compiled for checks: exact names in a Set, prefixes in a list. */
interface Matcher {
  all: boolean;
  exact: Set<string>;
  prefixes: string[];
}

function compile(patterns: readonly string[]): Matcher {
  const m: Matcher = { all: false, exact: new Set(), prefixes: [] };
  for (const p of patterns) {
    if (p === '*') m.all = true;
    else if (p.endsWith('*')) m.prefixes.push(p.slice(0, -1));
    else m.exact.add(p);
  }
  return m;
}

function matches(m: Matcher, topic: string): boolean {
  if (m.all || m.exact.has(topic)) return true;
  for (const prefix of m.prefixes) if (topic.startsWith(prefix)) return true;
  return false;
}

const compiled = new WeakMap<Acl, { pub: Matcher; sub: Matcher }>();

function compiledFor(acl: Acl): { pub: Matcher; sub: Matcher } {
  let c = compiled.get(acl);
  if (!c) {
    c = { pub: compile(acl.pub), sub: compile(acl.sub) };
    compiled.set(acl, c);
  }
  return c;
}

/**
 * Whether an ACL allows an action. `pub`/`sub` need the topic; `admin` ignores it. A topic
 * that is not a valid topic name is never allowed (it could not exist anyway).
 * The ACL is treated as immutable: its compiled form is cached on first use.
 */
export function aclAllows(acl: Acl, action: AclAction, topic?: string): boolean {
  if (action === 'admin') return acl.admin === true;
  if (topic === undefined || !isValidTopicName(topic)) return false;
  return matches(compiledFor(acl)[action], topic);
}
