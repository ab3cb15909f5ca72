#!/usr/bin/env node
// The addon's C++ sources for binding.gyp, found the way CMakeLists.txt's GLOB_RECURSE finds them,
// so a new file under native/ is built by both paths without editing either.
import { readdirSync } from 'node:fs';
import path from 'node:path';

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return walk(full);
    return entry.name.endsWith('.cc') ? [full] : [];
  });
}

process.stdout.write(walk('native').sort().join(' ') + '\n');
