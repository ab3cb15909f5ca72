#!/usr/bin/env node
// The `clip-native` executable: sizes the libuv threadpool (see util/threadpool.cts) before the ES
// module loader first uses it, then runs the command line.
import '../util/threadpool.cjs';

void import('./main.js');
