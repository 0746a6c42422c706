import { carryTransitionTimes, failedPodStatus, runningPodStatus } from './pod-status.js';
import type { SidecarState } from './sidecar-process.js';
import { injectedPod } from './testdata/injected-pod.js';

const pod = injectedPod({ name: 'web-1', namespace: 'payments' });
const context = { podIP: '127.0.0.1', startTime: new Date('2026-11-22T10:00:00Z') };
const base: SidecarState = { running: true, started: false, ready: false, restartCount: 0, startedAt: new Date() };

function conditionStatus(status: ReturnType<typeof runningPodStatus>, type: string): string | undefined {
  return status.conditions?.find((condition) => condition.type === type)?.status;
}

describe('runningPodStatus', () => {
  it('is Pending and not Ready while the sidecar has not started', () => {
    const status = runningPodStatus(pod, base, context);
    expect(status.phase).toBe('Pending');
    expect(conditionStatus(status, 'Ready')).toBe('False');
    expect(status.initContainerStatuses?.[0]).toMatchObject({ name: 'gatehouse-sidecar', started: false, ready: false, state: { running: {} } });
  });

  it('is Running with Ready and ContainersReady once the sidecar is ready; app containers are reported not run', () => {
    const status = runningPodStatus(pod, { ...base, started: true, ready: true }, context);
    expect(status.phase).toBe('Running');
    expect(conditionStatus(status, 'Ready')).toBe('True');
    expect(conditionStatus(status, 'ContainersReady')).toBe('True');
    expect(conditionStatus(status, 'Initialized')).toBe('True');
    expect(status.initContainerStatuses?.[0]).toMatchObject({ started: true, ready: true, image: 'ghcr.io/gatehouse/sidecar:0.1.0' });
    expect(status.containerStatuses).toEqual([expect.objectContaining({ name: 'app', ready: false, state: { waiting: expect.objectContaining({ reason: 'StandInKubelet' }) } })]);
    expect(status.podIP).toBe('127.0.0.1');
  });

  it('reports a crashed sidecar waiting in CrashLoopBackOff with its last termination', () => {
    const lastTermination = { code: 3, signal: null, startedAt: new Date(), finishedAt: new Date() };
    const status = runningPodStatus(pod, { running: false, started: false, ready: false, restartCount: 2, lastTermination, waitingReason: 'CrashLoopBackOff' }, context);
    expect(status.phase).toBe('Running');
    expect(conditionStatus(status, 'Ready')).toBe('False');
    expect(status.initContainerStatuses?.[0]).toMatchObject({ restartCount: 2, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 3 } } });
  });
});

describe('failedPodStatus', () => {
  it('is Failed with the reason and message on the pod and its Ready condition', () => {
    const status = failedPodStatus('ErrImageNeverPull', 'image x has no local command', context);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'ErrImageNeverPull', message: 'image x has no local command' });
    expect(status.conditions?.find((condition) => condition.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ErrImageNeverPull' });
  });
});

describe('carryTransitionTimes', () => {
  it('keeps lastTransitionTime of unchanged conditions and moves it on a change', () => {
    const earlier = new Date('2026-11-22T09:00:00Z');
    const previous = [
      { type: 'Ready', status: 'False', lastTransitionTime: earlier },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: earlier },
    ];
    const next = carryTransitionTimes(previous, runningPodStatus(pod, { ...base, started: true, ready: true }, context));
    expect(next.conditions?.find((condition) => condition.type === 'PodScheduled')?.lastTransitionTime).toBe(earlier);
    expect(next.conditions?.find((condition) => condition.type === 'Ready')?.lastTransitionTime).not.toBe(earlier);
  });
});
