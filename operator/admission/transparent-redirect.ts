// Transparent mode: the iptables (nat OUTPUT) rules an init container installs in the pod's network
// namespace so every connection the app makes to a protected destination lands on the sidecar, and
// the app cannot go around it. Pure: ProtectedResources in, rules and the init container's script out.
//
// Nothing is resolved. A destination given as an IP literal gets a rule for that IP and port; one
// given as a DNS name gets a rule for its port to ANY address, because the name's addresses are not
// known here and change over time, and a rule per port also catches the app dialling the IP
// directly. That is broader than the resource: other servers on that port are redirected too, which
// is the fail-closed side. Two named destinations on one port but different sidecar ports cannot be
// told apart by a port rule, so that combination is refused rather than half-enforced.
import { GatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';

/** The sidecar's uid: its own upstream connections are exempt from redirection. */
export const SIDECAR_UID = 15532;
export const REDIRECT_CHAIN = 'GATEHOUSE_REDIRECT';

export type IpFamily = 'ipv4' | 'ipv6';

export interface RedirectDestination {
  readonly resource: string;
  /** An IP literal, or undefined for a DNS name (matched by port only). */
  readonly ip?: string;
  readonly family?: IpFamily;
  readonly port: number;
  readonly sidecarPort: number;
}

/** One iptables or ip6tables invocation, as argv. */
export interface RedirectCommand {
  readonly tool: 'iptables' | 'ip6tables';
  readonly args: readonly string[];
}

export interface RedirectPlan {
  readonly destinations: readonly RedirectDestination[];
  /** Rules appended to REDIRECT_CHAIN, in order: exemptions first, then one per destination. */
  readonly rules: readonly RedirectCommand[];
}

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$/;

function isIpv6(host: string): boolean {
  return host.includes(':') && URL.canParse(`http://[${host}]/`);
}

interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** host:port, [v6]:port, or an http(s) URL (its port, or 80/443 by scheme). */
export function parseDestination(address: string): HostPort | undefined {
  if (/^https?:\/\//.test(address)) {
    if (!URL.canParse(address)) return undefined;
    const url = new URL(address);
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(address);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1] ?? match[2]!, port };
}

function destinationOf(resource: ProtectedResource): RedirectDestination {
  const name = resource.metadata.name;
  const parsed = parseDestination(resource.spec.address);
  const problem = (detail: string) =>
    new GatehouseError('GH_ERR_TRANSPARENT_DESTINATION', { resource: name, address: resource.spec.address, detail });
  if (!parsed) throw problem('expected host:port or an http(s) URL');
  const base = { resource: name, port: parsed.port, sidecarPort: resource.spec.sidecar.port };
  if (IPV4.test(parsed.host)) return { ...base, ip: parsed.host, family: 'ipv4' };
  if (isIpv6(parsed.host)) return { ...base, ip: parsed.host, family: 'ipv6' };
  if (DNS_NAME.test(parsed.host)) return base;
  throw problem(`${parsed.host} is neither an IP address nor a DNS name`);
}

function destinationKey(destination: RedirectDestination): string {
  return `${destination.ip ?? '*'}|${destination.port}`;
}

/** Refuses two destinations that one rule could not tell apart but that go to different sidecar ports. */
function checkConflicts(destinations: readonly RedirectDestination[]): RedirectDestination[] {
  const byKey = new Map<string, RedirectDestination>();
  for (const destination of destinations) {
    const key = destinationKey(destination);
    const other = byKey.get(key);
    if (!other) byKey.set(key, destination);
    else if (other.sidecarPort !== destination.sidecarPort) {
      throw new GatehouseError('GH_ERR_TRANSPARENT_PORT_CONFLICT', {
        first: other.resource,
        second: destination.resource,
        port: destination.port,
      });
    }
  }
  return [...byKey.values()];
}

function redirectArgs(destination: RedirectDestination): string[] {
  const prefix = destination.family === 'ipv6' ? '/128' : '/32';
  const match = destination.ip === undefined ? [] : ['-d', `${destination.ip}${prefix}`];
  return ['-t', 'nat', '-A', REDIRECT_CHAIN, '-p', 'tcp', ...match, '--dport', String(destination.port),
    '-j', 'REDIRECT', '--to-ports', String(destination.sidecarPort)];
}

/** The tools a destination needs a rule in: a named destination may resolve to either family. */
function toolsFor(destination: RedirectDestination): RedirectCommand['tool'][] {
  if (destination.family === 'ipv4') return ['iptables'];
  if (destination.family === 'ipv6') return ['ip6tables'];
  return ['iptables', 'ip6tables'];
}

function exemptions(tool: RedirectCommand['tool']): RedirectCommand[] {
  const loopback = tool === 'iptables' ? '127.0.0.0/8' : '::1/128';
  return [
    // The sidecar's own upstream connections must reach the real destination.
    { tool, args: ['-t', 'nat', '-A', REDIRECT_CHAIN, '-m', 'owner', '--uid-owner', String(SIDECAR_UID), '-j', 'RETURN'] },
    // Loopback traffic (the app talking to the sidecar, or to itself) is never rewritten.
    { tool, args: ['-t', 'nat', '-A', REDIRECT_CHAIN, '-d', loopback, '-j', 'RETURN'] },
  ];
}

/**
 * The rules for the resources a pod may reach; IP-literal rules come before port-only ones so a
 * specific destination keeps its own sidecar port when a named one shares its port.
 */
export function planRedirect(resources: readonly ProtectedResource[]): RedirectPlan {
  const destinations = checkConflicts(resources.map(destinationOf))
    .sort((a, b) => Number(a.ip === undefined) - Number(b.ip === undefined) || a.resource.localeCompare(b.resource));
  const rules: RedirectCommand[] = [];
  for (const tool of ['iptables', 'ip6tables'] as const) {
    const mine = destinations.filter((destination) => toolsFor(destination).includes(tool));
    if (mine.length === 0) continue;
    rules.push(...exemptions(tool));
    for (const destination of mine) rules.push({ tool, args: redirectArgs(destination) });
  }
  return { destinations, rules };
}

const SAFE_TOKEN = /^[A-Za-z0-9_.:/!-]+$/;

function commandLine(tool: string, args: readonly string[]): string {
  for (const token of args) {
    // Every token comes from validated IPs, ports and constants; this is the guard that keeps it so.
    if (!SAFE_TOKEN.test(token)) throw new Error(`unsafe token in redirect rule: ${JSON.stringify(token)}`);
  }
  return [tool, ...args].join(' ');
}

/**
 * The POSIX shell script the redirect init container runs. It is re-runnable (an init container
 * may run again in the same network namespace): the chain is created or flushed, and the jump from
 * OUTPUT is added only once. `set -e` makes any failure fail the pod's start, never skip a rule.
 */
export function redirectScript(plan: RedirectPlan): string {
  const lines = ['set -eu'];
  for (const tool of ['iptables', 'ip6tables'] as const) {
    const rules = plan.rules.filter((rule) => rule.tool === tool);
    if (rules.length === 0) continue;
    lines.push(`${tool} -w -t nat -N ${REDIRECT_CHAIN} 2>/dev/null || ${tool} -w -t nat -F ${REDIRECT_CHAIN}`);
    for (const rule of rules) lines.push(commandLine(`${tool} -w`, rule.args));
    const jump = `-t nat -C OUTPUT -p tcp -j ${REDIRECT_CHAIN}`;
    lines.push(`${tool} -w ${jump} 2>/dev/null || ${tool} -w -t nat -A OUTPUT -p tcp -j ${REDIRECT_CHAIN}`);
  }
  return `${lines.join('\n')}\n`;
}
