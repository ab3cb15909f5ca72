// The body of a decode worker (src/data/decode-pool.ts): preprocesses images, writes their cache
// entries, and sends each crop back in memory of its own, transferred rather than copied.
import { parentPort } from 'node:worker_threads';

import { decodeHere, type DecodeReply, type DecodeRequest } from './decode-job.js';
import { classifyDecodeError } from './image-problems.js';
import { preprocessImageUint8 } from './preprocess.js';

async function decode(request: DecodeRequest): Promise<{ reply: DecodeReply; transfer: ArrayBuffer[] }> {
  try {
    const { crop, cacheWriteFailed } = await decodeHere(preprocessImageUint8, request.file, request.options, request.cache);
    // A copy the worker owns outright: sharp's buffers may not be transferable.
    const data = new Uint8Array(crop.data.length);
    data.set(crop.data);
    const reply: DecodeReply = { id: request.id, ok: true, data, sourceWidth: crop.sourceWidth, sourceHeight: crop.sourceHeight, cacheWriteFailed };
    return { reply, transfer: [data.buffer] };
  } catch (err) {
    const problem = classifyDecodeError(request.file, err);
    return { reply: { id: request.id, ok: false, kind: problem.kind, detail: problem.detail }, transfer: [] };
  }
}

parentPort!.on('message', (request: DecodeRequest) => {
  void decode(request).then(({ reply, transfer }) => parentPort!.postMessage(reply, transfer));
});
