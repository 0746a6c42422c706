// Picks the cluster the e2e scenarios run on: the loopback API server by default, the cluster in
// KUBECONFIG when one is set (unless GATEHOUSE_E2E_LOOPBACK=1); on loopback GATEHOUSE_E2E_INSTALL picks
// kubectl or helm as the installation; see scenario-cluster.ts.
import { startLoopbackCluster } from './loopback-cluster.js';
import { startRealCluster } from './real-cluster.js';
import { loopbackInstall, scenarioMode, type ScenarioCluster } from './scenario-cluster.js';

export function startScenarioCluster(env: NodeJS.ProcessEnv): Promise<ScenarioCluster> {
  return scenarioMode(env) === 'real-cluster' ? startRealCluster(env) : startLoopbackCluster({ install: loopbackInstall(env) });
}
