// The programmatic API of clip-native.
export { doctor, type DoctorReport } from './doctor.js';
export { runtimeInfo, setThreads, type TensorData, type RuntimeInfo } from './native.js';
export { cacheDir } from './util/cache.js';
export { version } from './version.js';
