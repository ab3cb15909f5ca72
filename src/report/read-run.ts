// Reading a training run's folder: metrics.jsonl (one JSON record per line, written as training
// goes) and config.json (the resolved configuration).
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface StepRecord {
  type: 'step';
  epoch: number;
  step: number;
  loss: number;
  lr: number;
  imagesPerSecond?: number;
  time?: string;
}

export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  loss: number;
  steps?: number;
  seconds?: number;
  skipped?: number;
  lr?: number;
}

/** Retrieval metrics of one direction (caption data). */
export interface RankRecord {
  r1: number;
  r5: number;
  r10: number;
  meanRank: number;
  medianRank: number;
}

export interface EvalRecord {
  type: 'eval';
  /** 0 = before training. */
  epoch: number;
  split?: string;
  /** Zero-shot accuracy (labelled data); NaN in a caption run's records. */
  top1: number;
  retrieval?: { imageToText: RankRecord; textToImage: RankRecord; loss: number };
  top5?: number;
  perClass?: Record<string, { accuracy: number; n: number }>;
  confusion?: number[][];
  classes?: string[];
}

export interface RunData {
  dir: string;
  config: Record<string, unknown> | undefined;
  steps: StepRecord[];
  epochs: EpochRecord[];
  evals: EvalRecord[];
  /** Lines that were not understood, as `file:line: why`; shown in the report rather than fatal. */
  problems: string[];
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export async function readRun(dir: string): Promise<RunData> {
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const configFile = path.join(dir, 'config.json');
  const text = await fs.readFile(metricsFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(err.code === 'ENOENT' ? `${metricsFile}: not found; is ${dir} a training run folder?` : `${metricsFile}: ${err.message}`);
  });
  const run: RunData = { dir, config: undefined, steps: [], epochs: [], evals: [], problems: [] };
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${metricsFile}:${i + 1}`;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // A run still being written can end in half a line; only an earlier bad line is a problem.
      if (i < lines.length - 1) run.problems.push(`${where}: not valid JSON`);
      return;
    }
    const problem = classify(record, run);
    if (problem) run.problems.push(`${where}: ${problem}`);
  });
  try {
    run.config = JSON.parse(await fs.readFile(configFile, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    run.problems.push(`${configFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`);
  }
  return run;
}

function isRetrievalRecord(value: unknown): value is EvalRecord['retrieval'] {
  const r = value as EvalRecord['retrieval'] | undefined;
  const ranks = (m: RankRecord | undefined) => m !== undefined && ['r1', 'r5', 'r10', 'meanRank', 'medianRank'].every((k) => isNumber(m[k as keyof RankRecord]));
  return typeof r === 'object' && r !== null && ranks(r.imageToText) && ranks(r.textToImage) && isNumber(r.loss);
}

/** Files the record under its type; returns why when it cannot. */
function classify(record: Record<string, unknown>, run: RunData): string | undefined {
  switch (record.type) {
    case 'step':
      if (!isNumber(record.loss) || !isNumber(record.step)) return 'step record without numeric step and loss';
      run.steps.push(record as unknown as StepRecord);
      return undefined;
    case 'epoch':
      if (!isNumber(record.epoch) || !isNumber(record.loss)) return 'epoch record without numeric epoch and loss';
      run.epochs.push(record as unknown as EpochRecord);
      return undefined;
    case 'eval':
      if (isNumber(record.epoch) && isRetrievalRecord(record.retrieval)) {
        run.evals.push({ ...(record as unknown as EvalRecord), top1: Number.NaN });
        return undefined;
      }
      if (!isNumber(record.epoch) || !isNumber(record.top1)) return 'eval record without numeric epoch and top1 (or retrieval metrics)';
      run.evals.push(record as unknown as EvalRecord);
      return undefined;
    default:
      // Other record types (added later by the training loop) are not errors, just not charted.
      return undefined;
  }
}
