/** Messages between the fuzz harness and its child process (fuzz-child.ts, or a test's fake child). */

export type ChildRequest = { type: 'load'; id: number; file: string } | { type: 'exit' };

export interface ChildReply {
  type: 'ready' | 'result';
  id: number;
  /** 'bad-error': something was thrown that is not an Error with a non-empty message. */
  outcome: 'loaded' | 'error' | 'bad-error';
  /** The error's first line, or the loaded format. */
  message: string;
  ms: number;
  /** process.memoryUsage().rss after the case, bytes. */
  rss: number;
  /** Peak RSS of the process so far (process.resourceUsage().maxRSS), bytes. */
  maxRss: number;
}
