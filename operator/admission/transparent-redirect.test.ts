import { isGatehouseError } from '../../api/errors.js';
import { httpResource, postgresResource } from './testing/injection-fixtures.js';
import { parseDestination, planRedirect, redirectScript, REDIRECT_CHAIN, SIDECAR_UID } from './transparent-redirect.js';

describe('parseDestination', () => {
  it.each([
    ['orders-db.payments.svc:5432', { host: 'orders-db.payments.svc', port: 5432 }],
    ['10.0.0.7:5432', { host: '10.0.0.7', port: 5432 }],
    ['[fd00::7]:5432', { host: 'fd00::7', port: 5432 }],
    ['https://billing.payments.svc', { host: 'billing.payments.svc', port: 443 }],
    ['http://billing.payments.svc/v1', { host: 'billing.payments.svc', port: 80 }],
    ['http://10.1.2.3:8080/x', { host: '10.1.2.3', port: 8080 }],
  ])('%s', (address, expected) => {
    expect(parseDestination(address)).toEqual(expected);
  });

  it.each(['orders-db', 'db:0', 'db:70000', 'http://'])('rejects %s', (address) => {
    expect(parseDestination(address)).toBeUndefined();
  });
});

describe('planRedirect', () => {
  it('redirects an IP-literal destination by IP and port, a named one by port in both families', () => {
    const plan = planRedirect([postgresResource('orders-db', 15432), postgresResource('legacy-db', 15433, '10.20.0.7:5432')]);
    const lines = plan.rules.map((rule) => `${rule.tool} ${rule.args.join(' ')}`);
    expect(lines).toEqual([
      `iptables -t nat -A ${REDIRECT_CHAIN} -m owner --uid-owner ${SIDECAR_UID} -j RETURN`,
      `iptables -t nat -A ${REDIRECT_CHAIN} -d 127.0.0.0/8 -j RETURN`,
      `iptables -t nat -A ${REDIRECT_CHAIN} -p tcp -d 10.20.0.7/32 --dport 5432 -j REDIRECT --to-ports 15433`,
      `iptables -t nat -A ${REDIRECT_CHAIN} -p tcp --dport 5432 -j REDIRECT --to-ports 15432`,
      `ip6tables -t nat -A ${REDIRECT_CHAIN} -m owner --uid-owner ${SIDECAR_UID} -j RETURN`,
      `ip6tables -t nat -A ${REDIRECT_CHAIN} -d ::1/128 -j RETURN`,
      `ip6tables -t nat -A ${REDIRECT_CHAIN} -p tcp --dport 5432 -j REDIRECT --to-ports 15432`,
    ]);
  });

  it('uses ip6tables only for an IPv6 literal', () => {
    const plan = planRedirect([postgresResource('v6-db', 15432, '[fd00::7]:5432')]);
    expect(new Set(plan.rules.map((rule) => rule.tool))).toEqual(new Set(['ip6tables']));
    expect(plan.rules.at(-1)!.args).toContain('fd00::7/128');
  });

  it('takes the port of an http URL from its scheme', () => {
    const plan = planRedirect([httpResource('billing-api', 18080, 'https://billing.payments.svc/v1')]);
    expect(plan.destinations).toEqual([{ resource: 'billing-api', port: 443, sidecarPort: 18080 }]);
  });

  it('refuses two named destinations on one port with different sidecar ports', () => {
    try {
      planRedirect([postgresResource('orders-db', 15432), postgresResource('reports-db', 15433)]);
      throw new Error('expected a conflict');
    } catch (error) {
      expect(isGatehouseError(error, 'GH_ERR_TRANSPARENT_PORT_CONFLICT')).toBe(true);
      expect((error as Error).message).toMatch(/orders-db and reports-db/);
    }
  });

  it('merges two resources that share destination and sidecar port', () => {
    const plan = planRedirect([postgresResource('a-db', 15432, '10.0.0.1:5432'), postgresResource('b-db', 15432, '10.0.0.1:5432')]);
    expect(plan.destinations).toHaveLength(1);
  });

  it('refuses an address that is neither IP nor DNS name, so nothing odd reaches the script', () => {
    expect(() => planRedirect([postgresResource('odd-db', 15432, 'db;reboot:5432')])).toThrow(/neither an IP address nor a DNS name/);
  });
});

describe('redirectScript', () => {
  it('creates or flushes the chain, appends the rules and jumps from OUTPUT once, failing on any error', () => {
    const script = redirectScript(planRedirect([postgresResource('legacy-db', 15433, '10.20.0.7:5432')]));
    expect(script.split('\n')).toEqual([
      'set -eu',
      `iptables -w -t nat -N ${REDIRECT_CHAIN} 2>/dev/null || iptables -w -t nat -F ${REDIRECT_CHAIN}`,
      `iptables -w -t nat -A ${REDIRECT_CHAIN} -m owner --uid-owner 15532 -j RETURN`,
      `iptables -w -t nat -A ${REDIRECT_CHAIN} -d 127.0.0.0/8 -j RETURN`,
      `iptables -w -t nat -A ${REDIRECT_CHAIN} -p tcp -d 10.20.0.7/32 --dport 5432 -j REDIRECT --to-ports 15433`,
      `iptables -w -t nat -C OUTPUT -p tcp -j ${REDIRECT_CHAIN} 2>/dev/null || iptables -w -t nat -A OUTPUT -p tcp -j ${REDIRECT_CHAIN}`,
      '',
    ]);
  });
});
