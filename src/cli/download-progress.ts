// How a model download looks in a terminal: a progress bar per file (bytes, speed, ETA) on a TTY, a
// line at the start, every 10 % and at the end otherwise; the SHA-256 check of a changed cached file as a
// bar of its own. Set once by the command line (setDownloadProgress) for every download of a run.
import cliProgress from 'cli-progress';

import type { DownloadProgress, ProgressCallback } from '../util/download.js';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;

export function createDownloadProgress(stream: NodeJS.WriteStream = process.stderr): ProgressCallback {
  if (!stream.isTTY) {
    let lastTenth = -1;
    return (p: DownloadProgress) => {
      const of = p.total ? ` of ${mb(p.total)}` : '';
      if (p.status === 'initiate') {
        lastTenth = p.total ? Math.floor((10 * p.loaded) / p.total) : -1;
        stream.write(`downloading ${p.file}${p.total ? ` (${mb(p.total)})` : ''}${p.loaded > 0 ? `, resuming at ${mb(p.loaded)}` : ''}\n`);
      } else if (p.status === 'progress' && p.total) {
        const tenth = Math.floor((10 * p.loaded) / p.total);
        if (tenth > lastTenth && tenth < 10) {
          lastTenth = tenth;
          stream.write(`  ${p.file}: ${mb(p.loaded)}${of}\n`);
        }
      } else if (p.status === 'done') {
        stream.write(`downloaded ${p.file} (${mb(p.loaded)})\n`);
      } else if (p.status === 'verify' && p.loaded === 0) {
        stream.write(`checking the SHA-256 of ${p.file}${of}\n`);
      }
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  let barFile = '';
  let since = { time: Date.now(), bytes: 0 };
  const start = (p: DownloadProgress, verb: string) => {
    bar?.stop();
    since = { time: Date.now(), bytes: p.loaded };
    bar = new cliProgress.SingleBar(
      { stream, format: `${verb} {file} |{bar}| {percentage}% | {done}/{size} | {speed} | ETA {eta_formatted}`, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    barFile = `${verb}:${p.file}`;
    const total = p.total ?? 0;
    bar.start(Math.max(total, 1), Math.min(p.loaded, Math.max(total, 1)), { file: p.file, done: mb(p.loaded), size: p.total ? mb(p.total) : '?', speed: '-' });
  };
  return (p: DownloadProgress) => {
    if (p.status === 'initiate') {
      start(p, 'downloading');
      return;
    }
    if (p.status === 'verify' && barFile !== `checking:${p.file}`) start(p, 'checking');
    if (p.status === 'done') {
      bar?.update(p.total ?? p.loaded, { done: mb(p.loaded) });
      bar?.stop();
      bar = undefined;
      barFile = '';
      return;
    }
    if (!bar) return;
    const seconds = (Date.now() - since.time) / 1000;
    const speed = seconds > 0.5 ? `${mb((p.loaded - since.bytes) / seconds)}/s` : '-';
    bar.update(p.total ? Math.min(p.loaded, p.total) : 0, { done: mb(p.loaded), speed });
    if (p.status === 'verify' && p.total !== null && p.loaded >= p.total) {
      bar.stop();
      bar = undefined;
      barFile = '';
    }
  };
}
