// Learning-rate schedules as pure functions of the optimizer-step count, so resuming a run needs
// only the counter, never a scheduler object's state.

export type Schedule =
  | { kind: 'constant' }
  /** StepLR: multiply by `gamma` every `every` optimizer steps (the blog: every 10 epochs, ×0.1). */
  | { kind: 'step'; every: number; gamma: number }
  /** Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`. */
  | { kind: 'cosine'; warmup: number; total: number };

/** The learning rate for the optimizer step that follows `completedSteps` steps. */
export function learningRate(schedule: Schedule, baseLr: number, completedSteps: number): number {
  switch (schedule.kind) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * schedule.gamma ** Math.floor(completedSteps / schedule.every);
    case 'cosine': {
      if (completedSteps < schedule.warmup) return (baseLr * (completedSteps + 1)) / schedule.warmup;
      const span = Math.max(1, schedule.total - schedule.warmup);
      const progress = Math.min(1, (completedSteps - schedule.warmup) / span);
      return 0.5 * (1 + Math.cos(Math.PI * progress)) * baseLr;
    }
  }
}

/** Checks a schedule's fields; returns problems as `key: message` strings. */
export function scheduleProblems(schedule: Schedule, key = 'schedule'): string[] {
  const problems: string[] = [];
  const positiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  switch (schedule.kind) {
    case 'constant':
      break;
    case 'step':
      if (!positiveInt(schedule.every)) problems.push(`${key}.every: must be a positive integer`);
      if (!(schedule.gamma > 0)) problems.push(`${key}.gamma: must be a positive number`);
      break;
    case 'cosine':
      if (!Number.isInteger(schedule.warmup) || schedule.warmup < 0) problems.push(`${key}.warmup: must be a non-negative integer`);
      if (!positiveInt(schedule.total)) problems.push(`${key}.total: must be a positive integer`);
      break;
    default:
      problems.push(`${key}.kind: must be constant, step or cosine`);
  }
  return problems;
}
