// Decoding of the Kubernetes protobuf encoding for the few kinds clients send that way: typed client-go
// clients (helm's release Secrets, `kubectl create namespace|secret|configmap|serviceaccount`) write
// protobuf. Only these kinds and ObjectMeta's common fields are understood; anything else answers 415,
// so a client that needs more fails loudly instead of storing half an object. Answers are always JSON.
import { ApiStatusError } from './api-status.js';

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Field = { number: number; wire: number; value: bigint | Buffer };

function readVarint(buffer: Buffer, offset: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  let position = offset;
  for (;;) {
    if (position >= buffer.length) throw unsupported('truncated varint');
    const byte = buffer[position++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, position];
    shift += 7n;
  }
}

function fields(buffer: Buffer): Field[] {
  const out: Field[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const [key, afterKey] = readVarint(buffer, offset);
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, next] = readVarint(buffer, afterKey);
      out.push({ number, wire, value });
      offset = next;
    } else if (wire === 2) {
      const [length, start] = readVarint(buffer, afterKey);
      const end = start + Number(length);
      out.push({ number, wire, value: buffer.subarray(start, end) });
      offset = end;
    } else if (wire === 1 || wire === 5) {
      offset = afterKey + (wire === 1 ? 8 : 4);
    } else throw unsupported(`wire type ${wire}`);
  }
  return out;
}

function unsupported(detail: string): ApiStatusError {
  return new ApiStatusError(415, 'UnsupportedMediaType', `the loopback API server cannot decode this protobuf body (${detail}); send application/json`);
}

const text = (field: Field): string => (field.value as Buffer).toString('utf8');
const bytes = (field: Field): Buffer => field.value as Buffer;
const number = (field: Field): number => Number(field.value as bigint);

function stringMap(entries: Field[], asBase64 = false): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of entries) {
    const parts = fields(bytes(entry));
    const key = parts.find((part) => part.number === 1);
    const value = parts.find((part) => part.number === 2);
    map[key === undefined ? '' : text(key)] = value === undefined ? '' : asBase64 ? bytes(value).toString('base64') : text(value);
  }
  return map;
}

function byNumber(list: Field[], wanted: number): Field[] {
  return list.filter((field) => field.number === wanted);
}

function timestamp(field: Field): string {
  const seconds = byNumber(fields(bytes(field)), 1)[0];
  return new Date((seconds === undefined ? 0 : number(seconds)) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function objectMeta(buffer: Buffer): Record<string, unknown> {
  const list = fields(buffer);
  const meta: Record<string, unknown> = {};
  const strings: Array<[number, string]> = [[1, 'name'], [2, 'generateName'], [3, 'namespace'], [5, 'uid'], [6, 'resourceVersion']];
  for (const [fieldNumber, name] of strings) {
    const field = byNumber(list, fieldNumber)[0];
    if (field !== undefined && text(field) !== '') meta[name] = text(field);
  }
  const generation = byNumber(list, 7)[0];
  if (generation !== undefined) meta.generation = number(generation);
  const created = byNumber(list, 8)[0];
  if (created !== undefined) meta.creationTimestamp = timestamp(created);
  if (byNumber(list, 11).length > 0) meta.labels = stringMap(byNumber(list, 11));
  if (byNumber(list, 12).length > 0) meta.annotations = stringMap(byNumber(list, 12));
  if (byNumber(list, 13).length > 0) {
    meta.ownerReferences = byNumber(list, 13).map((entry) => {
      const parts = fields(bytes(entry));
      const get = (n: number): string | undefined => (byNumber(parts, n)[0] === undefined ? undefined : text(byNumber(parts, n)[0]));
      const flag = (n: number): boolean | undefined => (byNumber(parts, n)[0] === undefined ? undefined : number(byNumber(parts, n)[0]) === 1);
      return { apiVersion: get(5), kind: get(1), name: get(3), uid: get(4), controller: flag(6), blockOwnerDeletion: flag(7) };
    });
  }
  if (byNumber(list, 14).length > 0) meta.finalizers = byNumber(list, 14).map(text);
  return meta;
}

type KindDecoder = (list: Field[], object: Record<string, unknown>) => void;

const DECODERS: Record<string, KindDecoder> = {
  'v1/Secret': (list, object) => {
    if (byNumber(list, 2).length > 0) object.data = stringMap(byNumber(list, 2), true);
    if (byNumber(list, 3)[0] !== undefined) object.type = text(byNumber(list, 3)[0]);
    if (byNumber(list, 4).length > 0) object.stringData = stringMap(byNumber(list, 4));
    if (byNumber(list, 5)[0] !== undefined) object.immutable = number(byNumber(list, 5)[0]) === 1;
  },
  'v1/ConfigMap': (list, object) => {
    if (byNumber(list, 2).length > 0) object.data = stringMap(byNumber(list, 2));
    if (byNumber(list, 3).length > 0) object.binaryData = stringMap(byNumber(list, 3), true);
    if (byNumber(list, 4)[0] !== undefined) object.immutable = number(byNumber(list, 4)[0]) === 1;
  },
  'v1/Namespace': (list, object) => {
    const spec = byNumber(list, 2)[0];
    if (spec !== undefined) object.spec = { finalizers: byNumber(fields(bytes(spec)), 1).map(text) };
  },
  'v1/ServiceAccount': (list, object) => {
    if (byNumber(list, 3).length > 0) object.imagePullSecrets = byNumber(list, 3).map((entry) => ({ name: text(byNumber(fields(bytes(entry)), 1)[0]) }));
    if (byNumber(list, 4)[0] !== undefined) object.automountServiceAccountToken = number(byNumber(list, 4)[0]) === 1;
  },
};

/** Decodes a `k8s\0`-prefixed runtime.Unknown envelope into the JSON form of the object. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw unsupported('missing k8s protobuf prefix');
  const envelope = fields(body.subarray(4));
  const typeMeta = byNumber(envelope, 1)[0];
  const raw = byNumber(envelope, 2)[0];
  if (typeMeta === undefined || raw === undefined) throw unsupported('no type or body in the envelope');
  const typeFields = fields(bytes(typeMeta));
  const apiVersion = byNumber(typeFields, 1)[0] === undefined ? '' : text(byNumber(typeFields, 1)[0]);
  const kind = byNumber(typeFields, 2)[0] === undefined ? '' : text(byNumber(typeFields, 2)[0]);
  const decoder = DECODERS[`${apiVersion}/${kind}`];
  if (decoder === undefined && kind !== 'DeleteOptions') throw unsupported(`kind ${apiVersion}/${kind} is not decoded`);
  const list = fields(bytes(raw));
  if (kind === 'DeleteOptions') return deleteOptions(list);
  const metadata = byNumber(list, 1)[0];
  const object: Record<string, unknown> = { apiVersion, kind, metadata: metadata === undefined ? {} : objectMeta(bytes(metadata)) };
  decoder!(list, object);
  return object;
}

/** DeleteOptions: gracePeriodSeconds 1, preconditions 2 {uid 1, resourceVersion 2}, propagationPolicy 4, dryRun 5. */
function deleteOptions(list: Field[]): Record<string, unknown> {
  const options: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
  const grace = byNumber(list, 1)[0];
  if (grace !== undefined) options.gracePeriodSeconds = number(grace);
  const preconditions = byNumber(list, 2)[0];
  if (preconditions !== undefined) {
    const parts = fields(bytes(preconditions));
    options.preconditions = {
      ...(byNumber(parts, 1)[0] === undefined ? {} : { uid: text(byNumber(parts, 1)[0]) }),
      ...(byNumber(parts, 2)[0] === undefined ? {} : { resourceVersion: text(byNumber(parts, 2)[0]) }),
    };
  }
  if (byNumber(list, 4)[0] !== undefined) options.propagationPolicy = text(byNumber(list, 4)[0]);
  if (byNumber(list, 5).length > 0) options.dryRun = byNumber(list, 5).map(text);
  return options;
}
