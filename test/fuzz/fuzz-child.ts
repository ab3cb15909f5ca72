/**
 * The fuzzer's child process: loads weight files with loadModel, one at a time, and reports each
 * outcome to its parent (test/fuzz/harness.ts) over IPC. A crash, hang or runaway allocation here
 * kills only this process; the parent records the case and starts a new child.
 *
 * Replay a saved case by hand (the crash, if any, happens in the foreground):
 *   node dist/test/fuzz/fuzz-child.js --file <case file>
 */
import { performance } from 'node:perf_hooks';

import type { ChildReply, ChildRequest } from './protocol.js';

const { loadModel } = await import('../../src/model/model.js');

/** loadModel(file) and what came of it: a load, or an Error with its first line. */
async function loadOne(file: string): Promise<Omit<ChildReply, 'type' | 'id'>> {
  const started = performance.now();
  let outcome: ChildReply['outcome'];
  let message = '';
  try {
    const model = await loadModel(file);
    outcome = 'loaded';
    message = `${model.source?.format ?? '?'}`;
    model.dispose();
  } catch (e) {
    if (e instanceof Error && typeof e.message === 'string' && e.message.trim().length > 0) {
      outcome = 'error';
      message = e.message;
    } else {
      outcome = 'bad-error';
      message = `not an Error with a message: ${Object.prototype.toString.call(e)} ${String(e).slice(0, 200)}`;
    }
  }
  const ms = performance.now() - started;
  return { outcome, message: message.split('\n')[0]!.slice(0, 500), ms, rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 };
}

const fileFlag = process.argv.indexOf('--file');
if (fileFlag >= 0) {
  const file = process.argv[fileFlag + 1];
  if (!file) throw new Error('--file needs a path');
  const result = await loadOne(file);
  console.log(JSON.stringify(result));
  process.exitCode = result.outcome === 'bad-error' ? 1 : 0;
} else if (process.send) {
  const send = process.send.bind(process);
  process.on('message', (request: ChildRequest) => {
    if (request.type === 'exit') {
      process.disconnect();
      return;
    }
    void loadOne(request.file).then((r) => send({ type: 'result', id: request.id, ...r } satisfies ChildReply));
  });
  send({ type: 'ready', id: -1, outcome: 'loaded', message: '', ms: 0, rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 } satisfies ChildReply);
} else {
  // Run directly (`node --test dist/test/` runs every file under test/ too): nothing to do.
  console.log('usage: node dist/test/fuzz/fuzz-child.js --file <weights> (or forked by the fuzz harness)');
}
