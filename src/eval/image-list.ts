// Which images to embed: every image file under a folder (sorted, recursive), or a list file with
// one path per line (relative to the list's folder; blank lines and '#' comments ignored).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { IMAGE_EXTENSIONS, type Sample } from '../data/dataset.js';

export async function listImages(location: string): Promise<Sample[]> {
  const stat = await fs.stat(location).catch(() => undefined);
  if (!stat) throw new Error(`${location}: no such folder or list file`);
  if (stat.isDirectory()) {
    const files = await imagesUnder(path.resolve(location));
    if (files.length === 0) throw new Error(`${location}: no image files (${[...IMAGE_EXTENSIONS].join(', ')}) in this folder`);
    return files.map((image) => ({ image, source: { file: image, line: 0 } }));
  }
  const listFile = path.resolve(location);
  const lines = (await fs.readFile(listFile, 'utf8')).replace(/^\uFEFF/, '').split(/\r?\n/);
  const samples: Sample[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    samples.push({ image: path.resolve(path.dirname(listFile), line), source: { file: listFile, line: i + 1 } });
  });
  if (samples.length === 0) throw new Error(`${location}: the list names no images`);
  return samples;
}

async function imagesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const found: string[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await imagesUnder(full)));
    else if (entry.isFile() && IMAGE_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) found.push(full);
  }
  return found;
}

/** Texts to embed, one per non-blank line, with their 1-based line numbers. */
export async function readTextLines(file: string): Promise<Array<{ text: string; line: number }>> {
  const lines = (await fs.readFile(file, 'utf8')).replace(/^\uFEFF/, '').split(/\r?\n/);
  const texts = lines.flatMap((text, i) => (text.trim() === '' ? [] : [{ text, line: i + 1 }]));
  if (texts.length === 0) throw new Error(`${file}: no texts (one per line expected)`);
  return texts;
}
