// The report's section of the worst-ranked retrieval queries (a caption run's retrieval-worst.json):
// each image with its thumbnail, its captions, its rank and the caption ranked first instead; each
// caption with its image, its rank and the image ranked first. Thumbnails are inline data URIs, so
// the page stays one self-contained file.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { escapeXml } from './escape.js';

export interface WorstExamples {
  epoch: number;
  split?: string;
  imageToText: Array<{ image: string; rank: number; captions: string[]; top: string }>;
  textToImage: Array<{ caption: string; image: string; rank: number; top: string }>;
  /** Image path → data URI of its thumbnail (absent: it could not be read). */
  thumbnails: Map<string, string>;
}

const THUMBNAIL = 96;

/** `<runDir>/<file>` with thumbnails of every image it names; undefined when there is no such file. */
export async function readWorstExamples(file: string): Promise<WorstExamples | { problem: string } | undefined> {
  let parsed: Omit<WorstExamples, 'thumbnails'>;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8')) as Omit<WorstExamples, 'thumbnails'>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { problem: `${file}: ${(err as Error).message}` };
  }
  if (!Array.isArray(parsed.imageToText) || !Array.isArray(parsed.textToImage)) return { problem: `${file}: no imageToText and textToImage lists` };
  const images = new Set([...parsed.imageToText.map((w) => w.image), ...parsed.textToImage.flatMap((w) => [w.image, w.top])]);
  const thumbnails = new Map<string, string>();
  await Promise.all(
    [...images].map(async (image) => {
      const jpeg = await sharp(image).resize(THUMBNAIL, THUMBNAIL, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer().catch(() => undefined);
      if (jpeg) thumbnails.set(image, `data:image/jpeg;base64,${jpeg.toString('base64')}`);
    }),
  );
  return { ...parsed, thumbnails };
}

function thumbnail(worst: WorstExamples, image: string): string {
  const uri = worst.thumbnails.get(image);
  const name = escapeXml(path.basename(image));
  return uri ? `<img class="thumb" src="${uri}" alt="${name}" title="${escapeXml(image)}">` : `<span class="nodata">${name} (unreadable)</span>`;
}

/** The section's HTML. */
export function renderWorstExamples(worst: WorstExamples): string {
  const i2t = worst.imageToText.map(
    (w) => `<tr><td>${thumbnail(worst, w.image)}</td><td>${w.rank}</td><td>${w.captions.map(escapeXml).join('<br>')}</td><td>${escapeXml(w.top)}</td></tr>`,
  );
  const t2i = worst.textToImage.map(
    (w) => `<tr><td>${escapeXml(w.caption)}</td><td>${thumbnail(worst, w.image)}</td><td>${w.rank}</td><td>${thumbnail(worst, w.top)}</td></tr>`,
  );
  const split = worst.split ? ` (${escapeXml(worst.split)})` : '';
  return `<h2 id="worst-ranked">Worst-ranked examples, epoch ${worst.epoch}${split}</h2>
<h3>Image → text</h3>
<table class="worst"><tr><th>image</th><th>rank of its best caption</th><th>its captions</th><th>caption ranked first</th></tr>${i2t.join('')}</table>
<h3>Text → image</h3>
<table class="worst"><tr><th>caption</th><th>its image</th><th>rank</th><th>image ranked first</th></tr>${t2i.join('')}</table>`;
}
