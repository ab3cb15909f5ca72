// The CPU time of this process's main thread (the event loop's), which caps a loader on a machine with
// many cores however idle the others are. Linux only: /proc/self/task/<pid>/stat, utime + stime.
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ, fixed at 100 on Linux for /proc

export function mainThreadCpuSeconds(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
