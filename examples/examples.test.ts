// The example CI workflow really runs: its shell steps are executed with bash on a policies
// repository laid out as docs/gitops.md describes (built from config/samples), with the gatehouse
// CLI from this checkout standing in for the image's. It passes on good policies and fails on a
// broken policy test or a missing Secret. The GitOps manifests (Argo CD, Flux) are checked for the
// wiring the docs rely on; no Argo CD or Flux runs here.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const REPO_ROOT = resolve(HERE, '..');
const SAMPLES = join(REPO_ROOT, 'config', 'samples');

interface Step { name?: string; uses?: string; run?: string }
interface Workflow {
  on: { pull_request: { paths: string[] }; push: { branches: string[] } };
  permissions: Record<string, string>;
  jobs: Record<string, { container: { image: string }; env: Record<string, string>; steps: Step[] }>;
}

let workflow: Workflow;
let scratch: string;

beforeAll(async () => {
  workflow = parse(await readFile(join(HERE, 'ci', 'gatehouse-policies.github-actions.yaml'), 'utf8')) as Workflow;
  scratch = await mkdtemp(join(tmpdir(), 'gatehouse-examples-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A policies repository as docs/gitops.md lays it out, from the samples. */
async function policiesRepo(name: string): Promise<string> {
  const repo = join(scratch, name);
  for (const folder of ['identities', 'resources', 'policies']) await cp(join(SAMPLES, folder), join(repo, 'deploy', folder), { recursive: true });
  await cp(join(SAMPLES, 'tests'), join(repo, 'tests'), { recursive: true });
  await cp(join(SAMPLES, 'secrets'), join(repo, 'ci', 'secret-stubs'), { recursive: true });
  return repo;
}

function bash(script: string, cwd: string, runnerTemp: string): Promise<{ code: number; output: string }> {
  const env = {
    PATH: process.env.PATH, HOME: runnerTemp, RUNNER_TEMP: runnerTemp,
    // The workflow's container runs the image's CLI; here the same CLI runs from this checkout's source.
    GATEHOUSE: `${join(REPO_ROOT, 'node_modules', '.bin', 'tsx')} ${join(REPO_ROOT, 'cli', 'main.ts')}`,
  };
  return new Promise((done) => {
    execFile('bash', ['-e', '-c', script], { cwd, env, timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1;
      done({ code, output: stdout + stderr });
    });
  });
}

/** Runs the workflow's `run` steps in order, stopping at the first failure, as Actions does. */
async function runWorkflow(repo: string): Promise<{ failedStep?: string; output: string }> {
  const runnerTemp = join(repo, '..', `${repo.split('/').pop()}-runner-temp`);
  await mkdir(runnerTemp, { recursive: true });
  let output = '';
  for (const step of workflow.jobs.check.steps.filter((candidate) => candidate.run !== undefined)) {
    const result = await bash(step.run!, repo, runnerTemp);
    output += result.output;
    if (result.code !== 0) return { failedStep: step.name, output };
  }
  return { output };
}

describe('the example CI workflow', () => {
  it('checks out, then validates and policy-tests with the gatehouse CLI from the pinned image', () => {
    const job = workflow.jobs.check;
    expect(job.container.image).toMatch(/^gatehouse\/operator:\d+\.\d+\.\d+$/);
    expect(job.env.GATEHOUSE).toBe('node /app/dist/cli/main.js');
    expect(job.steps[0].uses).toMatch(/^actions\/checkout@v\d+$/);
    expect(job.steps.map((step) => step.run ?? '').join('\n')).toMatch(/\$GATEHOUSE validate[\s\S]*\$GATEHOUSE policy test/);
    expect(workflow.on.pull_request.paths).toEqual(expect.arrayContaining(['deploy/**', 'tests/**', 'ci/**']));
    expect(workflow.permissions).toEqual({ contents: 'read' });
  });

  it('passes on the sample policies', async () => {
    const result = await runWorkflow(await policiesRepo('good'));
    expect(result).toEqual({ output: expect.stringContaining('0 errors') });
    expect(result.output).toMatch(/\d+ passed, 0 failed/);
  }, 90_000);

  it('fails at the policy test step when a policy no longer does what its tests say', async () => {
    const repo = await policiesRepo('loosened');
    // Someone allows ci-runner to write: the test "ci may not write" must catch it.
    const policy = join(repo, 'deploy', 'policies', 'ci-read-only.yaml');
    const text = await readFile(policy, 'utf8');
    expect(text).toContain('operations: [read, transaction, session]');
    await writeFile(policy, text.replace('operations: [read, transaction, session]', 'operations: [read, write, transaction, session]'));
    const result = await runWorkflow(repo);
    expect(result.failedStep).toBe('gatehouse policy test');
    expect(result.output).toContain('ci may not write');
  }, 90_000);

  it('fails at the validate step when a Secret a resource needs is neither in Git nor stubbed', async () => {
    const repo = await policiesRepo('no-stubs');
    await rm(join(repo, 'ci', 'secret-stubs', 'orders-db-admin.yaml'));
    const result = await runWorkflow(repo);
    expect(result.failedStep).toBe('gatehouse validate');
    expect(result.output).toContain('GH_ERR_REF_UNKNOWN_SECRET');
  }, 90_000);
});

describe('the GitOps examples', () => {
  async function documents(path: string): Promise<{ kind: string; metadata: { name: string }; spec: Record<string, unknown> }[]> {
    return parseAllDocuments(await readFile(join(HERE, 'gitops', path), 'utf8')).map((document) => document.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });
  }

  it('Argo CD installs the chart before the policies, and ignores the caBundle the operator writes', async () => {
    const [gatehouse] = await documents('argocd/gatehouse.yaml');
    const [policies] = await documents('argocd/policies.yaml');
    expect(gatehouse.spec.source).toMatchObject({ path: 'charts/gatehouse', helm: { releaseName: 'gatehouse' } });
    expect((gatehouse as unknown as { metadata: { annotations: Record<string, string> } }).metadata.annotations['argocd.argoproj.io/sync-wave']).toBe('-1');
    const ignored = (gatehouse.spec.ignoreDifferences as { kind: string; name: string; jqPathExpressions: string[] }[]);
    expect(ignored.map((entry) => [entry.kind, entry.name, entry.jqPathExpressions[0]])).toEqual([
      ['MutatingWebhookConfiguration', 'gatehouse-sidecar-injector', '.webhooks[]?.clientConfig.caBundle'],
      ['ValidatingWebhookConfiguration', 'gatehouse-validation', '.webhooks[]?.clientConfig.caBundle'],
    ]);
    expect(policies.spec.source).toMatchObject({ path: 'deploy', directory: { recurse: true } });
  });

  it('Flux applies the policies after the Kustomization that waits for the HelmRelease', async () => {
    const release = (await documents('flux/gatehouse.yaml')).find((document) => document.kind === 'HelmRelease')!;
    expect(release.spec).toMatchObject({ targetNamespace: 'gatehouse-system', chart: { spec: { chart: './charts/gatehouse' } }, install: { crds: 'CreateReplace' }, upgrade: { crds: 'CreateReplace' } });
    const [infrastructure] = await documents('flux/gatehouse-kustomization.yaml');
    expect(infrastructure.spec.wait).toBe(true);
    const policies = (await documents('flux/policies.yaml')).find((document) => document.kind === 'Kustomization')!;
    expect(policies.spec).toMatchObject({ path: './deploy', dependsOn: [{ name: infrastructure.metadata.name }] });
  });

  it('name the webhook configurations the chart really installs', async () => {
    const webhooks = await readFile(join(REPO_ROOT, 'charts', 'gatehouse', 'templates', '_helpers.tpl'), 'utf8');
    for (const name of ['gatehouse-sidecar-injector', 'gatehouse-validation']) expect(webhooks).toContain(`}}${name}{{`);
  });
});
