// Option parsing shared by the evaluation commands (eval, predict, embed, interpolate): each parser
// names the flag it was given, so a typo says which option is wrong.
import { InvalidArgumentError, Option } from 'commander';

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function unitInterval(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`expected a number from 0 to 1, got ${JSON.stringify(value)}`);
  return n;
}

export const precisionOption = () => new Option('--precision <precision>', 'inference precision').choices(['fp32', 'bf16', 'fp16']).default('fp32');
export const deviceOption = () => new Option('--device <device>', "device for the model: 'cpu', 'cuda', 'cuda:1'").default('cpu');
export const templatesOption = () =>
  new Option('--templates <templates>', "prompt templates: 'default', 'blog', 'openai-imagenet', or one template with {label} / {}").default('default');

/** Progress on stderr for terminals only, so piped output (--json) stays clean. */
export function progressLine(what: string): ((p: { done: number; total: number }) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return ({ done, total }) => {
    process.stderr.write(`\r${what} ${done}/${total}`);
    if (done >= total) process.stderr.write('\n');
  };
}
