// Preload for profiling runs: samples every allocation of the operator, including objects the GC
// has since collected (V8's sampling heap profiler with includeObjectsCollectedBy*GC), and writes
// <dir>/alloc-<pid>.heapprofile when the process exits. Shows who makes the garbage that a heap
// snapshot cannot see. Use:
//   BENCH_OPERATOR_ALLOC_PROFILE=/tmp/alloc BENCH_OPERATOR_SIZES=10000 \
//   BENCH_OPERATOR_NODE_ARGS="--import ./bench/operator/alloc-profile.ts" node bench/operator/run.ts
// then `node bench/operator/alloc-summary.ts /tmp/alloc/alloc-*.heapprofile`.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_OPERATOR_ALLOC_PROFILE ?? '.';
const session = new Session();
session.connect();
session.post('HeapProfiler.startSampling', {
  samplingInterval: 16384,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
// A same-thread inspector session answers synchronously, so this works in an 'exit' handler.
process.on('exit', () => {
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) return;
    writeFileSync(path.join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(result.profile));
  });
});
