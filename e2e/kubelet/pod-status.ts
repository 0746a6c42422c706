// The Pod status the stand-in kubelet reports, built from its sidecar's state. Pure, so the mapping
// from process state to phase, conditions and container statuses is tested without a server.
import type { V1ContainerState, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';
import { SIDECAR_CONTAINER_NAME } from './sidecar-spec.js';
import type { SidecarState } from './sidecar-process.js';

export const STAND_IN_REASON = 'StandInKubelet';

export interface StatusContext {
  readonly podIP: string;
  readonly startTime: Date;
}

/**
 * Ready and ContainersReady follow the sidecar alone: app containers are not run (the tests act as
 * the app), so they are reported waiting with a reason saying so rather than pretending to run.
 */
export function runningPodStatus(pod: V1Pod, sidecar: SidecarState, context: StatusContext): V1PodStatus {
  const now = new Date();
  const image = pod.spec?.initContainers?.find((container) => container.name === SIDECAR_CONTAINER_NAME)?.image ?? '';
  const sidecarStatus: V1ContainerStatus = {
    name: SIDECAR_CONTAINER_NAME,
    image,
    imageID: '',
    ready: sidecar.ready,
    started: sidecar.started,
    restartCount: sidecar.restartCount,
    state: containerState(sidecar),
    lastState: sidecar.lastTermination
      ? { terminated: { exitCode: sidecar.lastTermination.code ?? 137, signal: signalNumber(sidecar.lastTermination.signal), reason: 'Error', startedAt: sidecar.lastTermination.startedAt, finishedAt: sidecar.lastTermination.finishedAt } }
      : undefined,
  };
  const appStatuses: V1ContainerStatus[] = (pod.spec?.containers ?? []).map((container) => ({
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    ready: false,
    started: false,
    restartCount: 0,
    state: { waiting: { reason: STAND_IN_REASON, message: 'the stand-in kubelet runs only the gatehouse-sidecar; the test acts as the app' } },
  }));
  return {
    phase: sidecar.started || sidecar.restartCount > 0 ? 'Running' : 'Pending',
    podIP: context.podIP,
    podIPs: [{ ip: context.podIP }],
    hostIP: context.podIP,
    startTime: context.startTime,
    conditions: [
      condition('PodScheduled', true, now),
      condition('Initialized', sidecar.started, now),
      condition('ContainersReady', sidecar.ready, now),
      condition('Ready', sidecar.ready, now),
    ],
    initContainerStatuses: [sidecarStatus],
    containerStatuses: appStatuses,
  };
}

/** A pod the stand-in cannot run (unmapped image, unsupported env source, no token): Failed, with why. */
export function failedPodStatus(reason: string, message: string, context: StatusContext): V1PodStatus {
  const now = new Date();
  return {
    phase: 'Failed',
    reason,
    message,
    startTime: context.startTime,
    conditions: [condition('PodScheduled', true, now), condition('ContainersReady', false, now, reason, message), condition('Ready', false, now, reason, message)],
  };
}

function containerState(sidecar: SidecarState): V1ContainerState {
  if (sidecar.running) return { running: { startedAt: sidecar.startedAt } };
  if (sidecar.waitingReason) return { waiting: { reason: sidecar.waitingReason } };
  if (sidecar.lastTermination) {
    return { terminated: { exitCode: sidecar.lastTermination.code ?? 137, reason: 'Completed', startedAt: sidecar.lastTermination.startedAt, finishedAt: sidecar.lastTermination.finishedAt } };
  }
  return { waiting: { reason: 'ContainerCreating' } };
}

/** Keeps a condition's lastTransitionTime when its status did not change, as the API conventions ask. */
export function carryTransitionTimes(previous: readonly V1PodCondition[] | undefined, next: V1PodStatus): V1PodStatus {
  const before = new Map((previous ?? []).map((entry) => [entry.type, entry]));
  const conditions = next.conditions?.map((entry) => {
    const old = before.get(entry.type);
    return old && old.status === entry.status && old.lastTransitionTime ? { ...entry, lastTransitionTime: old.lastTransitionTime } : entry;
  });
  return { ...next, conditions };
}

function condition(type: string, status: boolean, now: Date, reason?: string, message?: string): V1PodCondition {
  return { type, status: status ? 'True' : 'False', lastTransitionTime: now, lastProbeTime: undefined, reason, message };
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGTERM: 15, SIGKILL: 9, SIGINT: 2, SIGABRT: 6, SIGSEGV: 11 };

function signalNumber(signal: NodeJS.Signals | null): number | undefined {
  return signal ? SIGNALS[signal] : undefined;
}
