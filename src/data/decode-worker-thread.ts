// The body of a decode worker (src/data/decode-pool.ts): preprocesses images, writes their cache
// entries, and sends each crop back in memory of its own, transferred rather than copied.
import { parentPort } from 'node:worker_threads';

import { decodeHere, type CacheTarget } from './decode-pool.js';
import { classifyDecodeError, type ImageProblemKind } from './image-problems.js';
import { preprocessImageUint8, type PreprocessOptions } from './preprocess.js';

export interface DecodeRequest {
  id: number;
  file: string;
  options: PreprocessOptions;
  cache?: CacheTarget;
}

export type DecodeReply =
  | { id: number; ok: true; data: Uint8Array; sourceWidth: number; sourceHeight: number; cacheWriteFailed: boolean }
  | { id: number; ok: false; kind: ImageProblemKind; detail: string };

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
