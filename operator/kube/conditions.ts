// status.conditions helpers with metav1.Condition semantics: one condition per type, and
// lastTransitionTime moves only when the status does, so "since when is it not Ready" stays true.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** RFC 3339 to the second, as metav1.Time serialises. */
export function conditionTime(now: Date): string {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/** A new list with `next` set: replaced in place if its type exists, appended otherwise. */
export function setCondition(conditions: readonly Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((condition) => condition.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const lastTransitionTime = previous !== undefined && previous.status === next.status ? previous.lastTransitionTime : conditionTime(now);
  const updated: Condition = { ...next, lastTransitionTime };
  if (index >= 0) list[index] = updated;
  else list.push(updated);
  return list;
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((condition) => condition.type !== type);
}
