import os from 'node:os';
import path from 'node:path';

/**
 * The model/vocabulary cache directory, resolved the way Hugging Face users expect:
 * explicit option, `CLIP_NATIVE_CACHE`, `$XDG_CACHE_HOME/clip-native`, `~/.cache/clip-native`.
 * Never inside node_modules, so reinstalling the package keeps downloaded weights.
 */
export function cacheDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  if (process.env.CLIP_NATIVE_CACHE) return path.resolve(process.env.CLIP_NATIVE_CACHE);
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'clip-native');
  return path.join(os.homedir(), '.cache', 'clip-native');
}

/** OpenAI's own cache (`clip.load` downloads there); reused when a file's SHA-256 matches. */
export function openaiCacheDir(): string {
  return path.join(os.homedir(), '.cache', 'clip');
}

/** `HF_HUB_OFFLINE=1` or `CLIP_NATIVE_OFFLINE=1`: no network access at all. */
export function isOffline(): boolean {
  const truthy = (v: string | undefined) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
  return truthy(process.env.HF_HUB_OFFLINE) || truthy(process.env.CLIP_NATIVE_OFFLINE);
}
