// The end-to-end scenario of issue 5 (operator-scenario.ts) on the cluster the environment picks: the
// loopback API server with Gatehouse applied by kubectl (or by helm with GATEHOUSE_E2E_INSTALL=helm), or,
// with KUBECONFIG set, a real one with Gatehouse installed by Helm (cluster-driver.ts, e2e/README.md).
import { startScenarioCluster } from './cluster-driver.js';
import { operatorScenario } from './operator-scenario.js';

operatorScenario(() => startScenarioCluster(process.env));
