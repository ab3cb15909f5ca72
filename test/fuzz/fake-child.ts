/**
 * A stand-in for fuzz-child.js that misbehaves on request, so the harness's own detection is tested:
 * the "file" it is asked to load holds a command (segv, abort, exit, hang, spin, rss, rss-quick,
 * throw-string, throw-empty, ok, or anything else for an ordinary Error).
 */
import { readFileSync } from 'node:fs';

import type { ChildReply, ChildRequest } from './protocol.js';

// `node --test dist/test/` runs every file under test/, this one too: without a parent it does nothing.
const send = process.send?.bind(process) ?? (() => true);
const memory = () => ({ rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 });
const held: Buffer[] = [];

/** Touches `mib` MiB so that it is resident, not just reserved. */
function allocate(mib: number): void {
  for (let i = 0; i < mib; i++) held.push(Buffer.alloc(1 << 20, 1));
}

if (process.send) process.on('message', (request: ChildRequest) => {
  if (request.type === 'exit') return process.disconnect();
  const command = readFileSync(request.file, 'utf8').trim();
  const reply = (outcome: ChildReply['outcome'], message: string) => send({ type: 'result', id: request.id, outcome, message, ms: 1, ...memory() } satisfies ChildReply);
  switch (command) {
    case 'segv':
      process.kill(process.pid, 'SIGSEGV');
      return;
    case 'abort':
      process.abort();
    // falls through (never reached)
    case 'exit':
      process.exit(3);
    // falls through (never reached)
    case 'hang':
      return; // never answers
    case 'spin':
      for (;;);
    // falls through (never reached)
    case 'rss':
      // Grows past the limit and stays there: the polling sees it and kills the child.
      allocate(Number(process.env.FAKE_RSS_MIB ?? 600));
      setTimeout(() => reply('loaded', 'after allocating'), 30_000);
      return;
    case 'rss-quick':
      // Peaks and frees at once: only the child's own peak (maxRSS) tells.
      allocate(Number(process.env.FAKE_RSS_MIB ?? 600));
      held.length = 0;
      return reply('loaded', 'after a brief peak');
    case 'throw-string':
      return reply('bad-error', 'not an Error with a message: [object String] boom');
    case 'ok':
      return reply('loaded', 'fake');
    default:
      return reply('error', `${request.file}: ${command}`);
  }
});
if (process.send) send({ type: 'ready', id: -1, outcome: 'loaded', message: '', ms: 0, ...memory() } satisfies ChildReply);
