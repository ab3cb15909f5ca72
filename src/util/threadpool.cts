// Sizes libuv's threadpool for training; run it before anything else (`clip-native` does, through
// cli/bin.cts; an application embedding the library: `node --require clip-native/threadpool app.js`).
//
// The pool runs every fs call, every sharp decode (one pool thread each: sharp gives libvips one
// thread per image on glibc) and, for the whole of each step, the native train step's AsyncWorker.
// libuv's default of 4, one of them held by the train step, left a 16-core GPU machine 3 threads for
// reading and decoding.
// One thread per core for decoding, one for the train step and 3 for the loader's short fs calls
// (stat, cache reads and writes), so that they do not queue behind decodes; capped where extra
// threads only cost memory. A value the user set is kept.
//
// CommonJS on purpose: libuv reads UV_THREADPOOL_SIZE once, when the pool runs its first job, and
// Node's ES module loader runs one (it reads module files asynchronously) before the first ES module
// is evaluated, so from an ES module, even one imported first, the assignment comes too late.
import { availableParallelism } from 'node:os';

if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(Math.min(availableParallelism() + 4, 64));
