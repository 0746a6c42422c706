// Docker cannot build here (no engine), so this checks what can be checked without one: the stages,
// the non-root numeric USER, the ENTRYPOINT, that no secret is baked in, that every COPY source exists
// (or is produced by an earlier stage's `npm ci` / `npm run build`) and survives the .dockerignore,
// and that the node flags are ones node accepts where they are put.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import picomatch from 'picomatch';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly stage: string;
}

/** Instructions with continuations joined and comments dropped, each tagged with its stage name. */
function parseDockerfile(file: string): Instruction[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => !/^\s*#/.test(line));
  const logical = lines.join('\n').replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter(Boolean);
  let stage = '';
  return logical.map((line) => {
    const [keyword, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? '';
    return { keyword: keyword.toUpperCase(), args, stage };
  });
}

/** dockerignore semantics (moby/patternmatcher): the last matching pattern wins; a match on a parent folder counts. */
function isIgnored(ignoreFile: string, file: string): boolean {
  const patterns = readFileSync(ignoreFile, 'utf8').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const parents = file.split('/').map((_, index, parts) => parts.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/\/$/, '');
    const matches = picomatch(pattern, { dot: true });
    if (parents.some((candidate) => matches(candidate))) ignored = !negated;
  }
  return ignored;
}

const images = [
  { name: 'operator', user: '65532:65532', cmd: ['operator'], nodeOptions: '--max-semi-space-size=8' },
  { name: 'sidecar', user: '15532:15532', cmd: ['sidecar'], nodeOptions: '--max-semi-space-size=2' },
] as const;

describe.each(images)('the $name image', ({ name, user, cmd, nodeOptions }) => {
  const dockerfile = path.join(repoRoot, 'images', `${name}.Dockerfile`);
  const ignoreFile = `${dockerfile}.dockerignore`;
  const instructions = parseDockerfile(dockerfile);
  const final = instructions.filter((instruction) => instruction.stage === 'runtime');
  const of = (keyword: string, list: readonly Instruction[] = instructions) => list.filter((instruction) => instruction.keyword === keyword);

  it('builds in a Node 22 stage and ships a runtime stage of dist + production node_modules', () => {
    const froms = of('FROM').map((instruction) => instruction.args);
    expect(froms).toEqual(['${NODE_IMAGE} AS build', '${NODE_IMAGE} AS deps', '${NODE_IMAGE} AS runtime']);
    expect(of('ARG').map((instruction) => instruction.args)).toContain('NODE_IMAGE=node:22-bookworm-slim');
    const runs = (stage: string) => of('RUN').filter((instruction) => instruction.stage === stage).map((instruction) => instruction.args).join(' && ');
    expect(runs('build')).toMatch(/npm ci\b/);
    expect(runs('build')).toContain('npm run build');
    expect(runs('deps')).toMatch(/npm ci .*--omit=dev/);
    // Nothing is installed or compiled in the runtime stage: it only copies.
    expect(runs('runtime')).toBe('');
    const fromStages = of('COPY', final).map((instruction) => /--from=(\S+)\s+(\S+)/.exec(instruction.args)?.slice(1, 3)).filter(Boolean);
    expect(fromStages).toEqual([['deps', '/app/node_modules'], ['build', '/src/dist']]);
  });

  it('runs as a non-root numeric user with the gatehouse CLI as entrypoint', () => {
    expect(of('USER', final).map((instruction) => instruction.args)).toEqual([user]);
    expect(user.startsWith('0')).toBe(false);
    const entrypoint = JSON.parse(of('ENTRYPOINT', final)[0].args) as string[];
    expect(entrypoint[0]).toBe('node');
    expect(entrypoint.at(-1)).toBe('/app/dist/cli/main.js');
    expect(JSON.parse(of('CMD', final)[0].args)).toEqual(cmd);
    expect(of('HEALTHCHECK', final).map((instruction) => instruction.args)).toEqual(['NONE']);
    // The last instruction touching USER comes after every COPY, so nothing runs as root later.
    const lastUser = final.findIndex((instruction) => instruction.keyword === 'USER');
    expect(final.slice(lastUser).some((instruction) => instruction.keyword === 'COPY' || instruction.keyword === 'RUN')).toBe(false);
  });

  it('sets node flags that node accepts where they are set', () => {
    const env = of('ENV', final).map((instruction) => instruction.args).join(' ');
    expect(env).toContain(`NODE_OPTIONS=${nodeOptions}`);
    // NODE_OPTIONS refuses most V8 flags and node then exits at once: run node with these exact settings.
    execFileSync(process.execPath, ['-e', '0'], { env: { PATH: process.env.PATH, NODE_OPTIONS: nodeOptions } });
    const entrypoint = JSON.parse(of('ENTRYPOINT', final)[0].args) as string[];
    execFileSync(process.execPath, [...entrypoint.slice(1, -1), '-e', '0']);
  });

  it('bakes in no secret and copies no local state', () => {
    for (const instruction of [...of('ARG'), ...of('ENV')]) {
      expect(instruction.args).not.toMatch(/(password|secret|token|credential|api_?key|private)/i);
    }
    for (const instruction of of('COPY')) {
      expect(instruction.args).not.toMatch(/(\.npmrc|\.env\b|\.git\b|\.gatehouse|kubeconfig|\.pem|\.key\b|id_rsa)/i);
    }
    for (const local of ['.git/HEAD', '.gatehouse/bin/kubectl', '.env', '.npmrc', 'node_modules/pg/package.json', 'dist/cli/main.js', 'e2e/kubelet/stand-in-kubelet.ts', 'testing/recordings/x']) {
      expect([local, isIgnored(ignoreFile, local)]).toEqual([local, true]);
    }
    expect(isIgnored(ignoreFile, 'cli/main.test.ts')).toBe(true);
    expect(isIgnored(ignoreFile, 'operator/control-plane/testdata/ca.pem')).toBe(true);
  });

  it('copies only paths that exist and that the .dockerignore lets through', () => {
    const contextCopies = of('COPY').filter((instruction) => !instruction.args.includes('--from='));
    expect(contextCopies.length).toBeGreaterThan(0);
    for (const instruction of contextCopies) {
      const sources = instruction.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect([source, existsSync(path.join(repoRoot, source))]).toEqual([source, true]);
        expect([source, isIgnored(ignoreFile, source)]).toEqual([source, false]);
      }
    }
    // What the runtime needs from the context, checked file by file.
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.build.json', 'cli/main.ts', 'api/proto/gatehouse/v1/discovery.proto']) {
      expect([needed, isIgnored(ignoreFile, needed)]).toEqual([needed, false]);
    }
  });

  it('puts the entrypoint where `npm run build` writes it', () => {
    // tsc -p tsconfig.build.json compiles cli/main.ts to <outDir>/cli/main.js; the build stage copies /src/dist.
    const buildConfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { extends?: string; include?: string[] };
    const baseConfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
    expect(buildConfig.extends).toBe('./tsconfig.json');
    expect(baseConfig.compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    expect(buildConfig.include).toEqual(expect.arrayContaining(['api', 'cli', 'operator', 'sidecar']));
    expect(existsSync(path.join(repoRoot, 'cli/main.ts'))).toBe(true);
    const packageJson = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(packageJson.bin.gatehouse).toBe('dist/cli/main.js');
    expect(packageJson.scripts.build).toBe('tsc -p tsconfig.build.json');
    // The proto the discovery service loads from /app/api/proto when run from /app/dist.
    const protoLoader = readFileSync(path.join(repoRoot, 'api/proto/discovery-proto.ts'), 'utf8');
    expect(protoLoader).toContain("'../../../api/proto/gatehouse/v1/discovery.proto'");
  });
});

describe('npm ci --ignore-scripts in the images', () => {
  // Skipping install scripts is safe only while no production dependency needs one; a new one must be looked at.
  const reviewed: Record<string, string> = {
    'node_modules/protobufjs': 'postinstall only warns about version schemes of dependents',
    'node_modules/kubernetes-fluent-client/node_modules/esbuild': 'postinstall only verifies the platform binary, which comes as an optional dependency; used by the fluent client CLI, not at run time',
  };

  it('skips no install script that a production dependency needs', () => {
    const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages).filter(([, entry]) => entry.hasInstallScript && !entry.dev).map(([name]) => name);
    expect(withScripts.filter((name) => !(name in reviewed))).toEqual([]);
  });
});
