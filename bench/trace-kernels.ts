// Which operators launch the GPU time: reads a Chrome trace written by `trainer.profile(…, {trace})`
// (bench/train-step.ts --profile N --trace FILE) and adds up each kernel's time under the chain of CPU
// operators that launched it (innermost first, e.g. `aten::copy_ ← aten::contiguous ←
// ConvolutionBackward0`), so that a copy or cast kernel can be traced to the layer that needs it; where
// the trace recorded shapes (profiles written to a file do), with the launching operator's tensor
// inputs, dims and strides, which tell a layout conversion from a cast.
//
//   node dist/bench/trace-kernels.js TRACE.json [--top 30] [--depth 3] [--steps N]
//
// Prints a markdown table: kernel, launching operators, calls and ms per step, share of GPU time.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface TraceEvent {
  ph?: string;
  cat?: string;
  name: string;
  ts: number;
  dur?: number;
  tid?: number | string;
  args?: Record<string, unknown>;
}

export interface KernelSource {
  kernel: string;
  chain: string[];
  calls: number;
  us: number;
  /** The launching operator's tensor inputs, "dims:strides" each, as most of these calls had them (traces with shapes). */
  inputs?: string;
}

/** An operator's tensor inputs as "[dims]:[strides]" joined by ", ", from a trace recorded with shapes. */
function tensorInputs(op: TraceEvent | undefined): string | undefined {
  const dims = op?.args?.['Input Dims'];
  const strides = op?.args?.['Input Strides'];
  if (!Array.isArray(dims)) return undefined;
  const tensors = dims.flatMap((d, i) => {
    if (!Array.isArray(d) || d.length === 0) return [];
    const s = Array.isArray(strides) ? strides[i] : undefined;
    return [`[${d.join(',')}]${Array.isArray(s) && s.length ? `:[${s.join(',')}]` : ''}`];
  });
  return tensors.length ? tensors.join(', ') : undefined;
}

/** Kernels and copies on the GPU, grouped by name and the chain of CPU operators that launched them. */
export function kernelsByOperator(events: TraceEvent[], depth: number): KernelSource[] {
  const ops = events.filter((e) => e.ph === 'X' && e.cat === 'cpu_op' && e.dur !== undefined);
  // Operators nest in time on their thread: sweep each thread's operators in start order with a stack
  // of the ones still open.
  const parent = new Map<TraceEvent, TraceEvent | undefined>();
  const byThread = new Map<unknown, TraceEvent[]>();
  for (const op of ops) {
    const list = byThread.get(op.tid) ?? [];
    list.push(op);
    byThread.set(op.tid, list);
  }
  for (const list of byThread.values()) {
    list.sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
    const open: TraceEvent[] = [];
    for (const op of list) {
      while (open.length > 0 && open.at(-1)!.ts + open.at(-1)!.dur! < op.ts + op.dur!) open.pop();
      parent.set(op, open.at(-1));
      open.push(op);
    }
  }
  const byExternalId = new Map<unknown, TraceEvent>();
  for (const op of ops) if (op.args?.['External id'] !== undefined) byExternalId.set(op.args['External id'], op);

  const groups = new Map<string, KernelSource>();
  const inputCounts = new Map<KernelSource, Map<string, number>>();
  for (const e of events) {
    if (e.ph !== 'X' || (e.cat !== 'kernel' && e.cat !== 'gpu_memcpy' && e.cat !== 'gpu_memset')) continue;
    const chain: string[] = [];
    const launcher = byExternalId.get(e.args?.['External id']);
    for (let op = launcher; op && chain.length < depth; op = parent.get(op)) {
      if (chain.at(-1) !== op.name) chain.push(op.name.replace(/^autograd::engine::evaluate_function: /, ''));
    }
    if (chain.length === 0) chain.push('(no CPU operator: e.g. inside a CUDA graph)');
    const key = `${e.name}\u0000${chain.join('\u0000')}`;
    const group = groups.get(key) ?? { kernel: e.name, chain, calls: 0, us: 0 };
    group.calls++;
    group.us += e.dur ?? 0;
    groups.set(key, group);
    const inputs = tensorInputs(launcher);
    if (inputs) {
      const counts = inputCounts.get(group) ?? new Map<string, number>();
      counts.set(inputs, (counts.get(inputs) ?? 0) + 1);
      inputCounts.set(group, counts);
    }
  }
  for (const [group, counts] of inputCounts) {
    const [inputs, calls] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
    group.inputs = calls === group.calls ? inputs : `${inputs} (${calls} of ${group.calls} calls)`;
  }
  return [...groups.values()].sort((a, b) => b.us - a.us);
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' }, depth: { type: 'string', default: '3' }, steps: { type: 'string', default: '1' } },
  });
  if (positionals.length !== 1) throw new Error('usage: trace-kernels TRACE.json [--top 30] [--depth 3] [--steps N]');
  const trace = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { traceEvents?: TraceEvent[] } | TraceEvent[];
  const events = Array.isArray(trace) ? trace : (trace.traceEvents ?? []);
  const rows = kernelsByOperator(events, Number(values.depth));
  if (rows.length === 0) throw new Error(`${positionals[0]}: no GPU kernels in this trace (a CPU run?)`);
  const steps = Number(values.steps);
  const total = rows.reduce((sum, r) => sum + r.us, 0);
  const short = (s: string) => (s.length > 90 ? `${s.slice(0, 87)}...` : s).replace(/\|/g, '\\|');
  const lines = [
    `GPU time ${(total / steps / 1000).toFixed(2)} ms per step over ${steps} step(s), by kernel and launching operators (innermost first):`,
    '',
    '| kernel | launched by | its tensor inputs, [dims]:[strides] | calls/step | ms/step | share |',
    '|---|---|---|---:|---:|---:|',
    ...rows.slice(0, Number(values.top)).map(
      (r) =>
        `| \`${short(r.kernel)}\` | ${r.chain.map(short).join(' ← ')} | ${r.inputs ? r.inputs.replace(/\|/g, '\\|') : '–'} | ${(r.calls / steps).toFixed(1)} | ` +
        `${(r.us / steps / 1000).toFixed(3)} | ${((100 * r.us) / total).toFixed(1)} % |`,
    ),
  ];
  console.log(lines.join('\n'));
}
