import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadBlogLayout, type BlogLayoutOptions } from './blog-layout.js';
import { DatasetError, type Dataset, type DatasetFormat } from './dataset.js';
import { loadFolderLayout, type FolderLayoutOptions } from './folder-layout.js';
import { loadTableLayout, type TableLayoutOptions } from './table-layout.js';

export type LoadDatasetOptions = BlogLayoutOptions &
  FolderLayoutOptions &
  TableLayoutOptions & {
    /** Skip auto-detection. */
    format?: DatasetFormat;
  };

/**
 * What a path holds: a folder with `meta/` is the blog layout, another folder a folder per class,
 * a .csv/.tsv/.jsonl file a table.
 */
export async function detectDatasetFormat(location: string): Promise<DatasetFormat> {
  const stat = await fs.stat(location).catch(() => undefined);
  if (!stat) throw new DatasetError(`${location}: dataset not found`);
  if (stat.isDirectory()) {
    const meta = await fs.stat(path.join(location, 'meta')).catch(() => undefined);
    return meta?.isDirectory() ? 'blog' : 'folder';
  }
  const ext = path.extname(location).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new DatasetError(`${location}: unknown dataset file type ${JSON.stringify(ext)} (expected a folder, .csv, .tsv or .jsonl)`);
}

/** Load a dataset from a folder or table file; problems are listed in `dataset.problems` (or thrown under `strict`). */
export async function loadDataset(location: string, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const format = options.format ?? (await detectDatasetFormat(location));
  switch (format) {
    case 'blog':
      return loadBlogLayout(location, options);
    case 'folder':
      return loadFolderLayout(location, options);
    case 'csv':
    case 'tsv':
    case 'jsonl':
      return loadTableLayout(location, format, options);
  }
}
