import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** A temporary sibling name: same directory, so the final rename stays on one filesystem. */
export function temporaryPath(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** fsync a directory so a rename inside it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Create `target` atomically from whatever `write` puts into a temporary file: fsync, rename, fsync of
 * the directory. If `write` throws (a failed download, a hash mismatch), nothing is left behind and
 * an existing `target` is untouched. A reader sees the old content or the new one, never a torn file.
 * `durable: false` leaves out both fsyncs, for files that can be made again: the rename still keeps
 * a running system from seeing a half-written file, but a machine crash may leave one behind.
 */
export async function writeAtomically(target: string, write: (handle: fs.FileHandle) => Promise<void>, { durable = true } = {}): Promise<void> {
  const tmp = temporaryPath(target);
  const handle = await fs.open(tmp, 'w');
  try {
    await write(handle);
    if (durable) await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  if (durable) await syncDirectory(path.dirname(target));
}

export function writeFileAtomic(target: string, data: string | Uint8Array, options: { durable?: boolean } = {}): Promise<void> {
  return writeAtomically(target, (handle) => handle.writeFile(data), options);
}
