#!/usr/bin/env node
// tsc writes dist/ without execute bits, and package.json's `bin` points into dist/: without this,
// `npx clip-native` in a checkout fails with "Permission denied". npm sets the bit itself only when it
// links a dependency's bins, never for the project it runs in, so every build that writes dist/ runs this.
import { chmodSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { bin } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const target of Object.values(typeof bin === 'string' ? { bin } : bin ?? {})) {
  const file = path.join(root, target);
  // Add execute wherever read is allowed (0644 → 0755), as npm's bin linking does.
  const mode = statSync(file).mode & 0o777;
  chmodSync(file, mode | ((mode & 0o444) >> 2));
}
