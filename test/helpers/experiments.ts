// Runs `build` with CLIP_NATIVE_EXPERIMENTS set to `list` (native modules read it when they are built),
// then restores the variable.
export async function withExperiments<T>(list: string | undefined, build: () => Promise<T>): Promise<T> {
  const saved = process.env.CLIP_NATIVE_EXPERIMENTS;
  if (list) process.env.CLIP_NATIVE_EXPERIMENTS = list;
  else delete process.env.CLIP_NATIVE_EXPERIMENTS;
  try {
    return await build();
  } finally {
    if (saved === undefined) delete process.env.CLIP_NATIVE_EXPERIMENTS;
    else process.env.CLIP_NATIVE_EXPERIMENTS = saved;
  }
}
