// How a sidecar reaches the operator's gRPC services (the discovery stream, RequestApproval, recording
// uploads): one definition of the transport and of the channel built from it, so every call verifies
// the operator the same way.
import { ChannelCredentials, Client, type ChannelOptions } from '@grpc/grpc-js';

/** TLS verified against the operator's CA, or plaintext, which must be asked for by name. */
export type ClientTransport =
  | { readonly kind: 'tls'; readonly caPem: string | Buffer; readonly serverName?: string }
  | { readonly kind: 'plaintext-local-mode' };

/** Where the operator is and how this sidecar proves who it is: the same for every call it makes there. */
export interface ControlPlaneConnection {
  /** host:port of the operator's discovery service. */
  readonly address: string;
  readonly transport: ClientTransport;
  /** `namespace/pod` in a cluster. */
  readonly nodeId: string;
  /** Read at every call or (re)connect: the kubelet rotates projected ServiceAccount tokens. */
  readonly token: () => string | Promise<string>;
  readonly sidecarVersion: string;
}

/** A gRPC client of the operator at `address`; with TLS, the certificate must name `serverName` when one is given. */
export function controlPlaneClient(address: string, transport: ClientTransport, options: ChannelOptions = {}): Client {
  const credentials = transport.kind === 'tls' ? ChannelCredentials.createSsl(Buffer.from(transport.caPem)) : ChannelCredentials.createInsecure();
  const serverName = transport.kind === 'tls' ? transport.serverName : undefined;
  return new Client(address, credentials, { ...options, ...(serverName ? { 'grpc.ssl_target_name_override': serverName } : {}) });
}
