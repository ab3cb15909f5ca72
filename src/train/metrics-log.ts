// metrics.jsonl: one JSON object per line, appended as the run goes, so a crash loses at most the
// line being written and other tools (report, plots) can read it while the run continues.
import { promises as fs } from 'node:fs';

export type MetricsRecord =
  | { type: 'step'; epoch: number; step: number; batch: number; loss: number; lr: number; imagesPerSecond: number; time: string }
  | {
      type: 'epoch';
      epoch: number;
      loss: number;
      steps: number;
      batches: number;
      seconds: number;
      skipped: number;
      /** Where the epoch's images came from. */
      images: { decoded: number; diskCache: number; memory: number };
      lr: number;
      time: string;
    }
  | ({ type: 'eval'; epoch: number; split: string; time: string } & Record<string, unknown>)
  | { type: 'resume'; epoch: number; batch: number; checkpoint: string; time: string };

export class MetricsLog {
  constructor(readonly file: string) {}

  async append(record: MetricsRecord): Promise<void> {
    await fs.appendFile(this.file, JSON.stringify(record) + '\n');
  }
}
