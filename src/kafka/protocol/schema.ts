/**
 * A schema-driven codec for Kafka messages. A message is declared once, as Kafka publishes
 * it (fields with the versions they exist in, which versions may be null, which are tagged,
 * which versions are flexible), in ./messages.ts; `compile` turns one message at one version
 * into a read and a write function, once, at startup. Every API and every version then shares
 * this one piece of code instead of a hand-written encoder per API and version.
 *
 * Why schema-driven (docs/kafka.md, "The codec", has the figures): the versions differ by a
 * field here and there, and flexible versions change how every string, array and byte field
 * is written and add tagged fields to every struct. Written by hand that is ~30 codecs with
 * the same bug in each; declared, it is one table per API that reads like Kafka's own
 * definition and can be checked against it field by field. loadtest/kafka-codec-bench.ts
 * measures the cost against hand-written code on the hot paths (Produce requests, Fetch
 * responses): it is small next to what a request does (a CRC over the batch, an fsync, a
 * sendfile), because a request holds a handful of fields and the batches are not decoded.
 *
 * Conventions: field names are the schema's in camelCase. A decoded struct holds every field
 * the message declares, at any version: one the version lacks gets its default, so handlers
 * read `req.allowAutoTopicCreation` without asking which version they got. Writing ignores
 * fields the version lacks. Tagged fields are written only when they differ from their
 * default; unknown tags are skipped when read, as the protocol requires.
 */
import { KafkaDecodeError, type FileRange, Reader, Writer } from './wire.ts';

export type Primitive = 'int8' | 'int16' | 'int32' | 'int64' | 'float64' | 'bool' | 'string' | 'bytes' | 'records' | 'uuid';

/** A version range as Kafka writes it: `0+`, `3-5`, `2`, or `none`. */
export type VersionRange = string;

export interface FieldDef {
  readonly name: string;
  /** A primitive, or the fields of a struct. */
  readonly type: Primitive | readonly FieldDef[];
  readonly array: boolean;
  readonly versions: VersionRange;
  readonly nullable: VersionRange;
  readonly tag: number | null;
  readonly tagged: VersionRange;
  readonly default: unknown;
}

export interface MessageDef {
  readonly name: string;
  readonly apiKey: number;
  /** The versions sluice speaks (a subset of Kafka's). */
  readonly versions: VersionRange;
  readonly flexible: VersionRange;
  readonly fields: readonly FieldDef[];
}

interface FieldOpts {
  nullable?: VersionRange;
  tag?: number;
  tagged?: VersionRange;
  default?: unknown;
}

/** A field of a primitive type, or a struct when `type` is a list of fields. */
export function field(name: string, type: Primitive | readonly FieldDef[], versions: VersionRange, opts: FieldOpts = {}): FieldDef {
  return { name, type, array: false, versions, nullable: opts.nullable ?? 'none', tag: opts.tag ?? null, tagged: opts.tagged ?? 'none', default: opts.default };
}

/** An array of a primitive type or of structs. */
export function array(name: string, type: Primitive | readonly FieldDef[], versions: VersionRange, opts: FieldOpts = {}): FieldDef {
  return { ...field(name, type, versions, opts), array: true };
}

export function message(name: string, apiKey: number, versions: VersionRange, flexible: VersionRange, fields: readonly FieldDef[]): MessageDef {
  return { name, apiKey, versions, flexible, fields };
}

export function inRange(range: VersionRange, v: number): boolean {
  if (range === 'none') return false;
  if (range.endsWith('+')) return v >= Number(range.slice(0, -1));
  const dash = range.indexOf('-');
  if (dash < 0) return v === Number(range);
  return v >= Number(range.slice(0, dash)) && v <= Number(range.slice(dash + 1));
}

/** Lowest and highest version of a bounded range (`0-9`, `4`). */
export function bounds(range: VersionRange): [number, number] {
  const dash = range.indexOf('-');
  if (dash < 0) return [Number(range), Number(range)];
  return [Number(range.slice(0, dash)), Number(range.slice(dash + 1))];
}

/** A records value to write: stored batches as bytes, or a range of a segment file (sendfile). */
export type RecordsValue = Uint8Array | FileRange | null;

/** Bytes of records at least this long go out as their own part, not copied into the response buffer. */
const EXTERNAL_RECORDS_BYTES_MIN = 4096;

const EMPTY_BYTES = new Uint8Array(0);

export interface Codec<T = Record<string, unknown>> {
  read(r: Reader): T;
  write(w: Writer, value: T): void;
}

type ReadFn = (r: Reader) => unknown;
type WriteFn = (w: Writer, v: unknown) => void;

function defaultOf(f: FieldDef, version: number): unknown {
  if (f.default !== undefined) return f.default;
  if (f.array) return inRange(f.nullable, version) ? null : [];
  if (typeof f.type !== 'string') return inRange(f.nullable, version) ? null : structDefault(f.type, version);
  switch (f.type) {
    case 'bool':
      return false;
    case 'string':
      return inRange(f.nullable, version) ? null : '';
    case 'bytes':
      return inRange(f.nullable, version) ? null : Buffer.alloc(0);
    case 'records':
      return null;
    case 'uuid':
      return Buffer.alloc(16);
    default:
      return 0;
  }
}

function structDefault(fields: readonly FieldDef[], version: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of fields) o[f.name] = defaultOf(f, version);
  return o;
}

/** The fewest bytes a value of this field can take: bounds array counts before allocation. */
function minBytes(f: FieldDef, version: number, flexible: boolean): number {
  if (f.array) return flexible ? 1 : 4;
  if (typeof f.type !== 'string') return structMinBytes(f.type, version, flexible);
  switch (f.type) {
    case 'int8':
    case 'bool':
      return 1;
    case 'int16':
      return 2;
    case 'int32':
      return 4;
    case 'int64':
    case 'float64':
      return 8;
    case 'uuid':
      return 16;
    case 'string':
      return flexible ? 1 : 2;
    default:
      return flexible ? 1 : 4;
  }
}

function structMinBytes(fields: readonly FieldDef[], version: number, flexible: boolean): number {
  let n = flexible ? 1 : 0;
  for (const f of fields) if (inRange(f.versions, version) && !(flexible && inRange(f.tagged, version))) n += minBytes(f, version, flexible);
  return Math.max(1, n);
}

function primitiveReader(type: Primitive, nullable: boolean, flexible: boolean, what: string): ReadFn {
  switch (type) {
    case 'int8':
      return (r) => r.int8();
    case 'int16':
      return (r) => r.int16();
    case 'int32':
      return (r) => r.int32();
    case 'int64':
      return (r) => r.int64();
    case 'float64':
      return (r) => r.float64();
    case 'bool':
      return (r) => r.bool();
    case 'uuid':
      return (r) => r.uuid();
    case 'string':
      return (r) => {
        const s = flexible ? r.compactString() : r.string();
        if (s === null && !nullable) throw new KafkaDecodeError(`${what} is null`);
        return s;
      };
    case 'bytes':
    case 'records':
      return (r) => {
        const b = flexible ? r.compactBytes() : r.bytes();
        if (b === null && !nullable) throw new KafkaDecodeError(`${what} is null`);
        return b;
      };
  }
}

/**
 * Writers of primitive types. A null given for a string or bytes field that the version does
 * not let be null is written empty, as Kafka writes "no protocol" in JoinGroup before v7.
 */
function primitiveWriter(type: Primitive, flexible: boolean, nullable: boolean): WriteFn {
  switch (type) {
    case 'int8':
      return (w, v) => w.int8(v as number);
    case 'int16':
      return (w, v) => w.int16(v as number);
    case 'int32':
      return (w, v) => w.int32(v as number);
    case 'int64':
      return (w, v) => w.int64(v as number);
    case 'float64':
      return (w, v) => w.float64(v as number);
    case 'bool':
      return (w, v) => w.bool(v as boolean);
    case 'uuid':
      return (w, v) => w.uuid(v as Uint8Array | null);
    case 'string': {
      const write = flexible ? (w: Writer, v: string | null) => w.compactString(v) : (w: Writer, v: string | null) => w.string(v);
      return nullable ? (w, v) => write(w, v as string | null) : (w, v) => write(w, (v as string | null) ?? '');
    }
    case 'bytes': {
      const write = flexible ? (w: Writer, v: Uint8Array | null) => w.compactBytes(v) : (w: Writer, v: Uint8Array | null) => w.bytes(v);
      return nullable ? (w, v) => write(w, v as Uint8Array | null) : (w, v) => write(w, (v as Uint8Array | null) ?? EMPTY_BYTES);
    }
    case 'records':
      return (w, v) => writeRecords(w, v as RecordsValue, flexible);
  }
}

function writeRecords(w: Writer, v: RecordsValue, flexible: boolean): void {
  if (v === null || v === undefined) return w.arrayLength(null, flexible) as void;
  if (v instanceof Uint8Array) {
    if (v.length < EXTERNAL_RECORDS_BYTES_MIN || !Buffer.isBuffer(v)) return flexible ? w.compactBytes(v) : w.bytes(v);
    if (flexible) w.uvarint(v.length + 1);
    else w.int32(v.length);
    return w.external(v);
  }
  if (flexible) w.uvarint(v.length + 1);
  else w.int32(v.length);
  w.external(v);
}

function fieldReader(f: FieldDef, version: number, flexible: boolean): ReadFn {
  const nullable = inRange(f.nullable, version);
  const one: ReadFn = typeof f.type === 'string' ? primitiveReader(f.type, nullable && !f.array, flexible, f.name) : structReader(f.type, version, flexible);
  if (!f.array) {
    if (typeof f.type !== 'string' && nullable) {
      // A nullable struct is preceded by an int8: -1 null, 1 present.
      return (r) => (r.int8() < 0 ? null : one(r));
    }
    return one;
  }
  const itemBytes = typeof f.type === 'string' ? minBytes({ ...f, array: false }, version, flexible) : structMinBytes(f.type, version, flexible);
  return (r) => {
    const n = r.arrayLength(flexible, itemBytes);
    if (n === -1) {
      if (!nullable) throw new KafkaDecodeError(`${f.name} is null`);
      return null;
    }
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = one(r);
    return out;
  };
}

function fieldWriter(f: FieldDef, version: number, flexible: boolean): WriteFn {
  const nullable = inRange(f.nullable, version);
  const one: WriteFn = typeof f.type === 'string' ? primitiveWriter(f.type, flexible, nullable && !f.array) : structWriter(f.type, version, flexible);
  if (!f.array) {
    if (typeof f.type !== 'string' && nullable) {
      return (w, v) => {
        if (v === null || v === undefined) return w.int8(-1);
        w.int8(1);
        one(w, v);
      };
    }
    return one;
  }
  return (w, v) => {
    const items = v as unknown[] | null | undefined;
    if (items === null || items === undefined) {
      if (!nullable && items === null) throw new Error(`${f.name} may not be null at this version`);
      return w.arrayLength(items === null ? null : 0, flexible);
    }
    w.arrayLength(items.length, flexible);
    for (const item of items) one(w, item);
  };
}

interface TaggedReader {
  name: string;
  read: ReadFn;
}

function structReader(fields: readonly FieldDef[], version: number, flexible: boolean): ReadFn {
  const steps: { name: string; read: ReadFn }[] = [];
  const defaults: { name: string; value: unknown }[] = [];
  const tagged = new Map<number, TaggedReader>();
  for (const f of fields) {
    if (!inRange(f.versions, version)) {
      defaults.push({ name: f.name, value: defaultOf(f, version) });
    } else if (flexible && inRange(f.tagged, version)) {
      tagged.set(f.tag as number, { name: f.name, read: fieldReader(f, version, flexible) });
      defaults.push({ name: f.name, value: defaultOf(f, version) });
    } else {
      steps.push({ name: f.name, read: fieldReader(f, version, flexible) });
    }
  }
  return (r) => {
    const o: Record<string, unknown> = {};
    for (const d of defaults) o[d.name] = typeof d.value === 'object' && d.value !== null ? structuredCloneDefault(d.value) : d.value;
    for (const s of steps) o[s.name] = s.read(r);
    if (flexible) readTaggedFields(r, tagged, o);
    return o;
  };
}

/** Defaults that are objects (empty arrays, structs) are copied so that a handler may change its own. */
function structuredCloneDefault(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (Array.isArray(v)) return [];
  return { ...(v as object) };
}

function readTaggedFields(r: Reader, tagged: Map<number, TaggedReader>, o: Record<string, unknown>): void {
  const count = r.uvarint();
  if (count > r.remaining) throw new KafkaDecodeError(`${count} tagged fields cannot fit in ${r.remaining} bytes`);
  let last = -1;
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint();
    if (tag <= last) throw new KafkaDecodeError(`tagged fields out of order (${tag} after ${last})`);
    last = tag;
    const size = r.uvarint();
    const body = r.raw(size, 'tagged field');
    const known = tagged.get(tag);
    if (!known) continue; // unknown tags are skipped, as the protocol requires
    const sub = new Reader(body);
    o[known.name] = known.read(sub);
    if (sub.remaining !== 0) throw new KafkaDecodeError(`tagged field ${tag} has ${sub.remaining} bytes left over`);
  }
}

function isDefault(v: unknown, d: unknown): boolean {
  if (v === undefined || v === d) return true;
  if (Array.isArray(v)) return v.length === 0 && Array.isArray(d);
  return false;
}

function structWriter(fields: readonly FieldDef[], version: number, flexible: boolean): WriteFn {
  const steps: { name: string; write: WriteFn; def: unknown }[] = [];
  const tagged: { name: string; tag: number; write: WriteFn; def: unknown }[] = [];
  for (const f of fields) {
    if (!inRange(f.versions, version)) continue;
    const write = fieldWriter(f, version, flexible);
    const def = defaultOf(f, version);
    if (flexible && inRange(f.tagged, version)) tagged.push({ name: f.name, tag: f.tag as number, write, def });
    else steps.push({ name: f.name, write, def });
  }
  tagged.sort((a, b) => a.tag - b.tag);
  return (w, v) => {
    const o = v as Record<string, unknown>;
    for (const s of steps) {
      const value = o[s.name];
      s.write(w, value === undefined ? s.def : value);
    }
    if (!flexible) return;
    const present = tagged.filter((t) => !isDefault(o[t.name], t.def));
    w.uvarint(present.length);
    for (const t of present) {
      const sub = new Writer(64);
      t.write(sub, o[t.name]);
      const bytes = sub.bytesOnly();
      w.uvarint(t.tag);
      w.uvarint(bytes.length);
      w.raw(bytes);
    }
  };
}

/** A message's codec at one version, compiled once. */
export function compile<T = Record<string, unknown>>(def: MessageDef, version: number): Codec<T> {
  const flexible = inRange(def.flexible, version);
  return {
    read: structReader(def.fields, version, flexible) as (r: Reader) => T,
    write: structWriter(def.fields, version, flexible) as (w: Writer, v: T) => void,
  };
}

/** Every version of a message in `versions`, compiled. */
export function compileAll<T = Record<string, unknown>>(def: MessageDef): Map<number, Codec<T>> {
  const [lo, hi] = bounds(def.versions);
  const out = new Map<number, Codec<T>>();
  for (let v = lo; v <= hi; v++) out.set(v, compile<T>(def, v));
  return out;
}

export function isFlexible(def: MessageDef, version: number): boolean {
  return inRange(def.flexible, version);
}
