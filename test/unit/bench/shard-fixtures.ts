// Builders of the sharding bench's results for its unit tests (shards.test.ts, shard-growth.test.ts).
import type { ReplicaFigures, ReplicaSetRun } from '../../../bench/operator/shard-run.ts';

export function member(
  name: string,
  cpuMs: number,
  probes: number,
  over: Partial<ReplicaFigures> = {},
): ReplicaFigures {
  return {
    name,
    leader: false,
    bucketsOwned: 16,
    bucketChanges: { acquired: 16, lost: 0 },
    startupCpuSeconds: 1,
    steady: {
      probes,
      cpuMs,
      probesPerSecond: probes / 100,
      cpuPercent: cpuMs / 1000,
      cpuPerProbeMs: cpuMs / probes,
      stretchMax: 1,
    },
    rssMiB: 200,
    hwmMiB: 250,
    samples: [],
    ...over,
  };
}

export function set(members: ReplicaFigures[], over: Partial<ReplicaSetRun> = {}): ReplicaSetRun {
  return {
    replicas: members.length,
    leasesFreeSeconds: 0,
    healthySeconds: 1,
    probedOnceSeconds: 5,
    allTrueSeconds: 10,
    gatesTrueAfterStartup: 1000,
    startupPodWrites: 1000,
    steady: { from: 20, to: 80, podWrites: 0, leftTrue: 0, loadAverage: [1, 1] },
    members,
    wall: { start: 0, startupEnd: 0, steadyFrom: 0, steadyTo: 0 },
    ...over,
  };
}
