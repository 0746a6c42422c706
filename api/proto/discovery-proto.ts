// Loads gatehouse/v1/discovery.proto at run time (proto-loader, no generated code) and gives the
// messages TypeScript types, so the operator's stream server and the sidecar's client share one
// typed definition of the wire format and nothing past this module sees an untyped message.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import protoLoader, { type MethodDefinition } from '@grpc/proto-loader';
import { GatehouseError } from '../errors.js';

export const SERVICE_NAME = 'gatehouse.v1.PolicyDiscoveryService';
export const STREAM_SNAPSHOTS_PATH = `/${SERVICE_NAME}/StreamSnapshots`;

/**
 * How proto-loader maps messages to objects. `keepCase` keeps the .proto's snake_case names (they
 * are what other languages see too). `longs: Number`: the only int64 fields are epoch ms and
 * durations in ms, far below 2^53, so numbers are exact and spare every caller a string parse.
 * `defaults` fills absent scalars ('' / 0 / []) so received messages always have every field; an
 * absent message field arrives as null.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface NodeMessage {
  readonly id: string;
  readonly token: string;
  readonly sidecar_version: string;
}

export interface ErrorDetailMessage {
  readonly code: string;
  readonly message: string;
}

/** A DiscoveryRequest as received: every scalar present (proto3 defaults), absent messages null. */
export interface DiscoveryRequest {
  readonly node: NodeMessage | null;
  readonly type_url: string;
  readonly version_info: string;
  readonly response_nonce: string;
  readonly error_detail: ErrorDetailMessage | null;
  readonly resource_names: readonly string[];
}

export interface ResourceMessage {
  readonly name: string;
  readonly version: string;
  readonly payload: Buffer;
  /** 0 for never. */
  readonly expires_at_unix_ms: number;
}

/** A DiscoveryResponse as received. */
export interface DiscoveryResponse {
  readonly version_info: string;
  readonly nonce: string;
  readonly type_url: string;
  readonly resources: readonly ResourceMessage[];
  readonly type_versions: Readonly<Record<string, string>>;
  /** 0 for no limit. */
  readonly snapshot_ttl_ms: number;
}

/** What a sender writes: any field may be left out and gets its proto3 default. */
export type DiscoveryRequestInit = Partial<Omit<DiscoveryRequest, 'node' | 'error_detail'>> & {
  readonly node?: Partial<NodeMessage> | null;
  readonly error_detail?: ErrorDetailMessage | null;
};
export type DiscoveryResponseInit = Partial<Omit<DiscoveryResponse, 'resources'>> & {
  readonly resources?: readonly (Partial<Omit<ResourceMessage, 'payload'>> & { readonly payload?: Uint8Array })[];
};

export type StreamSnapshotsMethod = MethodDefinition<DiscoveryRequestInit, DiscoveryResponseInit, DiscoveryRequest, DiscoveryResponse>;

export interface DiscoveryProto {
  /** The whole service, for Server.addService (methods left unimplemented answer UNIMPLEMENTED). */
  readonly service: ServiceDefinition;
  readonly streamSnapshots: StreamSnapshotsMethod;
}

/** Where the .proto is: beside this module when run from source, under the package root when run from dist/. */
function protoCandidates(): string[] {
  return [
    fileURLToPath(new URL('./gatehouse/v1/discovery.proto', import.meta.url)),
    fileURLToPath(new URL('../../../api/proto/gatehouse/v1/discovery.proto', import.meta.url)),
  ];
}

function findProto(protoPath: string | undefined): string {
  const candidates = protoPath === undefined ? protoCandidates() : [protoPath];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new GatehouseError('GH_ERR_CP_PROTO_NOT_FOUND', { paths: candidates.join(', ') });
  return found;
}

function isService(value: unknown): value is ServiceDefinition {
  return typeof value === 'object' && value !== null && 'StreamSnapshots' in value;
}

/**
 * Loads the service definition. Callers load once at startup and pass the result down; loading is
 * synchronous and takes a few milliseconds.
 */
export function loadDiscoveryProto(protoPath?: string): DiscoveryProto {
  const definition = protoLoader.loadSync(findProto(protoPath), LOADER_OPTIONS);
  const service = definition[SERVICE_NAME];
  if (!isService(service)) throw new GatehouseError('GH_ERR_CP_PROTO_NOT_FOUND', { paths: `${SERVICE_NAME} in ${findProto(protoPath)}` });
  // The one unchecked step: proto-loader builds (de)serializers at run time from the .proto, so
  // the message types above are asserted here, once, against the file loaded alongside them.
  const streamSnapshots = service.StreamSnapshots as StreamSnapshotsMethod;
  return { service, streamSnapshots };
}
