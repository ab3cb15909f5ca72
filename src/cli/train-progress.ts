// How a training run looks in a terminal: a progress bar with ETA per epoch on a TTY, plain log
// lines otherwise (CI logs, pipes), and one summary line per epoch in both cases.
import cliProgress from 'cli-progress';

import type { EpochLog, StepLog } from '../train/loop.js';

export interface TrainProgress {
  onBatch(log: StepLog): void;
  onLog(log: StepLog): void;
  onEpoch(log: EpochLog): void;
  message(text: string): void;
  stop(): void;
}

const fmt = (n: number, digits = 4) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

function epochLine(log: EpochLog): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const evalPart = !log.eval
    ? ''
    : 'retrieval' in log.eval
      ? `, R@1 image→text ${pct(log.eval.retrieval.imageToText.r1)}, text→image ${pct(log.eval.retrieval.textToImage.r1)}`
      : `, top-1 ${pct(log.eval.top1)}`;
  return `epoch ${log.epoch}/${log.epochs}: mean loss ${fmt(log.loss)} over ${log.batches} batches in ${log.seconds.toFixed(1)} s${evalPart}` +
    (log.skippedImages ? `, ${log.skippedImages} image(s) skipped` : '') + (log.checkpoint ? `; checkpoint ${log.checkpoint}` : '');
}

export function createTrainProgress(stream: NodeJS.WriteStream = process.stderr): TrainProgress {
  if (!stream.isTTY) {
    const write = (line: string) => stream.write(line + '\n');
    return {
      onBatch() {},
      onLog: (l) => write(`epoch ${l.epoch} batch ${l.batch}/${l.batches} step ${l.step}: loss ${fmt(l.loss)} lr ${l.lr.toExponential(2)} ${l.imagesPerSecond.toFixed(1)} img/s`),
      onEpoch: (l) => write(epochLine(l)),
      message: write,
      stop() {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  let barEpoch = -1;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onBatch(l) {
      if (!bar || barEpoch !== l.epoch) {
        stopBar();
        bar = new cliProgress.SingleBar(
          { stream, format: 'epoch {epoch} |{bar}| {value}/{total} batches | loss {loss} | lr {lr} | {ips} img/s | ETA {eta_formatted}', hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(l.batches, 0, { epoch: l.epoch, loss: '-', lr: '-', ips: '-' });
        barEpoch = l.epoch;
      }
      bar.update(l.batch, { epoch: l.epoch, loss: fmt(l.loss), lr: l.lr.toExponential(2), ips: l.imagesPerSecond.toFixed(1) });
    },
    onLog() {},
    onEpoch(l) {
      stopBar();
      stream.write(epochLine(l) + '\n');
    },
    message(text) {
      if (bar) bar.stop();
      stream.write(text + '\n');
      bar = undefined;
    },
    stop: stopBar,
  };
}
