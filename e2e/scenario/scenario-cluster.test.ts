// How the scenario picks its cluster and its loopback installation, and moves the samples into the run's namespace.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { intoNamespace, loopbackInstall, scenarioMode } from './scenario-cluster.js';

describe('scenarioMode', () => {
  it('runs against the loopback API server without KUBECONFIG', () => {
    expect(scenarioMode({})).toBe('loopback');
    expect(scenarioMode({ KUBECONFIG: '  ' })).toBe('loopback');
  });

  it('runs against the cluster in KUBECONFIG, unless GATEHOUSE_E2E_LOOPBACK=1', () => {
    expect(scenarioMode({ KUBECONFIG: '/home/dev/.kube/kind' })).toBe('real-cluster');
    expect(scenarioMode({ KUBECONFIG: '/home/dev/.kube/kind', GATEHOUSE_E2E_LOOPBACK: '1' })).toBe('loopback');
    expect(scenarioMode({ KUBECONFIG: '/home/dev/.kube/kind', GATEHOUSE_E2E_LOOPBACK: '0' })).toBe('real-cluster');
  });
});

describe('loopbackInstall', () => {
  it('installs with kubectl unless GATEHOUSE_E2E_INSTALL=helm', () => {
    expect(loopbackInstall({})).toBe('kubectl');
    expect(loopbackInstall({ GATEHOUSE_E2E_INSTALL: ' ' })).toBe('kubectl');
    expect(loopbackInstall({ GATEHOUSE_E2E_INSTALL: 'kubectl' })).toBe('kubectl');
    expect(loopbackInstall({ GATEHOUSE_E2E_INSTALL: 'helm' })).toBe('helm');
  });

  it('refuses any other value rather than silently running the kubectl installation', () => {
    expect(() => loopbackInstall({ GATEHOUSE_E2E_INSTALL: 'Helm3' })).toThrow(expect.objectContaining({ code: 'GH_ERR_E2E_INSTALL_MODE', message: expect.stringContaining('GATEHOUSE_E2E_INSTALL=Helm3 is not') }));
  });
});

describe('intoNamespace', () => {
  it('puts every sample object into the given namespace and keeps everything else', async () => {
    for (const folder of ['identities', 'secrets', 'resources', 'policies']) {
      const directory = path.join(REPO_ROOT, 'config/samples', folder);
      const texts = await Promise.all((await readdir(directory)).filter((file) => file.endsWith('.yaml')).map((file) => readFile(path.join(directory, file), 'utf8')));
      const original = parseAllDocuments(texts.join('\n---\n')).map((document) => document.toJS() as { metadata: Record<string, unknown> } | null).filter((object) => object !== null);
      const moved = parseAllDocuments(intoNamespace(texts.join('\n---\n'), 'gatehouse-e2e-1a2b')).map((document) => document.toJS() as { metadata: Record<string, unknown> });
      expect(moved).toHaveLength(original.length);
      expect(original.length).toBeGreaterThan(0);
      moved.forEach((object, index) => {
        expect(object.metadata.namespace).toBe('gatehouse-e2e-1a2b');
        expect({ ...object, metadata: { ...object.metadata, namespace: 'x' } }).toEqual({ ...original[index], metadata: { ...original[index]!.metadata, namespace: 'x' } });
      });
    }
  });

  it('adds the namespace to objects without one, including flow-style metadata, and skips empty documents', () => {
    const text = intoNamespace('---\n# only a comment\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\n', 'ns-1');
    const objects = parseAllDocuments(text).map((document) => document.toJS() as { metadata: { name: string; namespace: string } });
    expect(objects).toEqual([{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'a', namespace: 'ns-1' } }]);
  });

  it('refuses a manifest that is not an object rather than applying it unchanged', () => {
    expect(() => intoNamespace('- a\n- b\n', 'ns-1')).toThrow(/not an object/);
    expect(() => intoNamespace('metadata: {name: [unclosed\n', 'ns-1')).toThrow();
  });
});
