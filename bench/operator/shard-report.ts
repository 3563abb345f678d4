// The sharding bench's figures against issue 14's goals, and its Markdown section for
// bench/RESULTS.md. Pure: a result in, rows and text out.
import type { FigureRow } from '../figures.ts';
import { figuresTable } from '../run.ts';
import type { Spread } from './shard-observe.ts';
import type { GapFigures } from './shard-replicas.ts';
import type {
  KillFigures,
  ReplicaFigures,
  ReplicaSetRun,
  ShardBenchOptions,
  ShardResult,
  SizeRun,
} from './shard-run.ts';

/** Issue 14: per-replica CPU per probe within 1.1× of the single replica's. */
export const CPU_PER_PROBE_RATIO_GOAL = 1.1;
/** Issue 14: RSS per replica at 150,000 pods across 3 replicas. */
export const RSS_GOAL_MIB = 512;
export const RSS_GOAL_PODS = 150_000;

const SOURCE = 'bench/operator/shards.ts';
const n = (x: number) => x.toLocaleString('en');
const orDash = (x: number | null | undefined) => (x === null || x === undefined ? '–' : String(x));
/** a as a percentage of b, to 0.1. */
export const percentOf = (a: number, b: number) => Math.round((a / b) * 1000) / 10;

/** The replica whose steady CPU per probe is the largest (the one that judges the goal). */
export function worstPerProbe(members: ReplicaFigures[]): ReplicaFigures | undefined {
  return members
    .filter((m) => m.steady.cpuPerProbeMs !== null)
    .sort((a, b) => b.steady.cpuPerProbeMs! - a.steady.cpuPerProbeMs!)[0];
}

/** CPU per probe over all the replicas: their CPU summed ÷ their probes summed, ms; null without probes. */
export function pooledPerProbe(members: ReplicaFigures[]): number | null {
  const probes = members.reduce((a, m) => a + m.steady.probes, 0);
  if (probes === 0) return null;
  const cpuMs = members.reduce((a, m) => a + m.steady.cpuMs, 0);
  return Math.round((cpuMs / probes) * 1000) / 1000;
}

const replicasName = (r: ReplicaSetRun) => (r.replicas === 1 ? '1 replica' : `${r.replicas} replicas`);

function startupRows(run: SizeRun): FigureRow[] {
  return run.sets.flatMap((r): FigureRow[] => [
    {
      figure: `Every pod probed once, ${n(run.pods)} pods, ${replicasName(r)}`,
      value: r.probedOnceSeconds,
      unit: 's',
      source: SOURCE,
      note: `start → readygate_probes_total summed over the replicas ≥ ${n(run.pods)}${r.probedOnceSeconds === null ? ', not within the start-up deadline' : ''}`,
    },
    {
      figure: `Every gate True, ${n(run.pods)} pods, ${replicasName(r)}`,
      value: r.allTrueSeconds,
      unit: 's',
      source: SOURCE,
      note: `start → every gate True seen by a watch; ${n(r.gatesTrueAfterStartup)} True at the end of the start-up, ${n(r.startupPodWrites)} pod writes`,
    },
    ...(r.unstretchedSeconds === undefined
      ? []
      : [
          {
            figure: `Every period stretch back to 1 after the start-up, ${n(run.pods)} pods, ${replicasName(r)}`,
            value: r.unstretchedSeconds,
            unit: 's',
            source: SOURCE,
            note:
              r.unstretchedSeconds === null
                ? 'still stretched (or not answering) at the deadline: the steady window began then'
                : 'after the settle wait; the steady window began then',
          },
        ]),
  ]);
}

const us = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : Math.round(ms * 1000));

function cpuRows(run: SizeRun): FigureRow[] {
  // By size, not position: a run with --no-solo has the set of replicas only.
  const one = run.sets.find((r) => r.replicas === 1);
  const many = run.sets.find((r) => r.replicas > 1);
  const solo = one?.members[0]?.steady;
  const base = solo?.cpuPerProbeMs ?? null;
  const rows: FigureRow[] = [
    {
      figure: `CPU per probe, 1 replica, ${n(run.pods)} pods`,
      value: us(base),
      unit: 'µs',
      source: SOURCE,
      note: `steady window: Δ CPU ÷ Δ readygate_probes_total of the process, at ${orDash(solo?.probesPerSecond)} probes/s, ${orDash(solo?.cpuPercent)} % of a core`,
    },
  ];
  if (!many) return rows;
  const worst = worstPerProbe(many.members);
  const pooled = pooledPerProbe(many.members);
  const per = many.members
    .map(
      (m) =>
        `${m.name} ${orDash(us(m.steady.cpuPerProbeMs))} µs at ${m.steady.probesPerSecond} probes/s (${m.bucketsOwned} buckets)`,
    )
    .join(', ');
  const value = worst && base ? percentOf(worst.steady.cpuPerProbeMs!, base) : null;
  rows.push({
    figure: `CPU per probe per replica, ${many.replicas} replicas, % of 1 replica's, ${n(run.pods)} pods`,
    value,
    unit: '%',
    goal: `≤ ${Math.round(CPU_PER_PROBE_RATIO_GOAL * 100)} % (${CPU_PER_PROBE_RATIO_GOAL} ×)`,
    ...(value === null ? {} : { met: value <= Math.round(CPU_PER_PROBE_RATIO_GOAL * 100) }),
    source: SOURCE,
    note: `the largest replica's; ${per}; the ${many.replicas} pooled ${orDash(us(pooled))} µs = ${pooled && base ? percentOf(pooled, base) : '–'} %`,
  });
  return rows;
}

function rssRows(run: SizeRun, shardedWatch: boolean): FigureRow[] {
  return run.sets.map((r) => {
    const largest = Math.max(...r.members.map((m) => m.hwmMiB));
    const judged = r.replicas === 3 && run.pods >= RSS_GOAL_PODS;
    return {
      figure: `Peak RSS per replica, ${replicasName(r)}, ${n(run.pods)} pods`,
      value: largest,
      unit: 'MiB',
      goal: `≤ ${RSS_GOAL_MIB} MiB at ${n(RSS_GOAL_PODS)} pods across 3 replicas`,
      ...(judged ? { met: largest <= RSS_GOAL_MIB } : {}),
      source: SOURCE,
      note: `VmHWM, the largest replica: ${r.members.map((m) => `${m.name} ${m.hwmMiB}`).join(', ')} MiB; ${shardedWatch ? 'the API server honours shardSelector: each replica of a set caches its buckets only (docs/sharding.md, step 3)' : 'every replica caches every pod'}`,
    };
  });
}

function steadyRows(run: SizeRun): FigureRow[] {
  return run.sets.map((r) => ({
    figure: `Pod writes in steady state, ${replicasName(r)}, ${n(run.pods)} pods`,
    value: r.steady.podWrites,
    unit: 'PATCH pods/status',
    goal: '0',
    met: r.steady.podWrites === 0,
    source: SOURCE,
    note: `audit log over ${Math.round(r.steady.to - r.steady.from)} s; ${r.steady.leftTrue} gates left True; machine load average ${r.steady.loadAverage?.join(' → ') ?? '–'}`,
  }));
}

const spreadText = (x: Spread | null) => (x ? `p50 ${x.p50} s, p99 ${x.p99} s, max ${x.max} s` : '–');

/** The replicas' Lease writes (audit log): past the renew deadline, and where their time went. */
function leaseRows(run: SizeRun): FigureRow[] {
  return run.sets.flatMap((r) =>
    r.leaseWrites
      ? (['startup', 'after'] as const).map((phase) => {
          const f = r.leaseWrites![phase];
          const failed = Object.entries(f.failed).map(([code, k]) => `${k} × ${code}`);
          return {
            figure: `Lease writes answered past the renew deadline, ${phase === 'startup' ? 'start-up' : 'after the start-up'}, ${replicasName(r)}, ${n(run.pods)} pods`,
            value: f.pastDeadline,
            unit: 'writes',
            source: SOURCE,
            note: `audit log, of ${n(f.writes)} held-Lease writes (${failed.length ? `not 2xx: ${failed.join(', ')}` : 'all 2xx'}); sent → received ${spreadText(f.toServer)}; received → answered ${spreadText(f.inServer)}`,
          };
        })
      : [],
  );
}

function killRows(run: SizeRun): FigureRow[] {
  const r = run.sets.find((x) => x.kill);
  const k = r?.kill;
  if (!r || !k) return [];
  const gaps = k.takeoverSeconds.map(([b, t]) => `${b}: ${orDash(t)}`).join(', ');
  return [
    {
      figure: `Every bucket held again after a replica is SIGKILLed, ${n(run.pods)} pods`,
      value: k.allHeldSeconds,
      unit: 's',
      goal: `≤ lease duration + 2 × retry period = ${k.boundSeconds} s`,
      met: k.allHeldSeconds !== null && k.allHeldSeconds <= k.boundSeconds,
      source: SOURCE,
      note: `killed ${k.victim} (${k.victimBuckets.length} buckets${k.victimWasLeader ? ', the leader' : ''}); its buckets held by a survivor after (s) ${gaps}; Leases polled every 250 ms`,
    },
    {
      figure: `Flips after the kill, ${n(run.pods)} pods`,
      value: k.podWritesSinceKill,
      unit: 'PATCH pods/status',
      goal: '0',
      met: k.podWritesSinceKill === 0 && k.leftTrue === 0 && k.gatesTrueAtEnd === run.pods,
      source: SOURCE,
      note: `audit log over ${k.observedSeconds} s from the kill, through one more probe per target by the survivors (${k.roundSeconds === null ? 'not within its deadline' : `${k.roundSeconds} s after every bucket was held`}); ${k.leftTrue} gates left True, ${n(k.gatesTrueAtEnd)} of ${n(run.pods)} True at the end`,
    },
    ...gapRows(run, k),
  ];
}

/** The longest time a sampled pod went unprobed across the kill. */
function gapRows(run: SizeRun, k: KillFigures): FigureRow[] {
  return k.gaps
    ? [gapRow(run, 'the kill', k.gaps, `every bucket was held again ${orDash(k.allHeldSeconds)} s after it`)]
    : [];
}

/**
 * A gap row. A target keeps its phase on the epoch grid of its period when its bucket moves
 * (src/probes/scheduler.ts nextOnGrid), so a pod goes one period unprobed, or two when the
 * handover spans its slot: the note says so rather than a goal.
 */
function gapRow(run: SizeRun, across: string, g: GapFigures, held: string): FigureRow {
  const open =
    g.open > 0 ? `; ${g.open} not probed again within the ${g.waitedSeconds} s waited, so it is at least this` : '';
  return {
    figure: `Longest gap a pod went unprobed across ${across}, ${n(run.pods)} pods`,
    value: g.longestSeconds,
    unit: 's',
    source: SOURCE,
    note: `between two probes of one pod, over ${n(g.pods)} pods with an address each spread over all the pods (median ${g.medianSeconds} s); the probe period is ${run.periodSeconds} s, and ${held}${open}`,
  };
}

/** The single replica scaled to 3 and back: time to balance, flips, gaps. */
function scaleRows(run: SizeRun): FigureRow[] {
  const steps = run.sets.find((r) => r.scale)?.scale ?? [];
  return steps.flatMap((st): FigureRow[] => {
    const label = `scale ${st.from} → ${st.to}`;
    const holders = Object.entries(st.holdersAfter)
      .map(([h, b]) => `${h} ${b.length}`)
      .join(', ');
    return [
      {
        figure: `Buckets held as planned after ${label}, ${n(run.pods)} pods`,
        value: st.balancedSeconds,
        unit: 's',
        source: SOURCE,
        note: `from the ${st.to > st.from ? 'start of the joiners' : 'graceful stop of the two'} until every bucket is held by the ${st.to} replica(s), none above its fair share; ${st.moved} buckets moved; after: ${holders}`,
      },
      {
        figure: `Flips on ${label}, ${n(run.pods)} pods`,
        value: st.podWrites,
        unit: 'PATCH pods/status',
        goal: '0',
        met: st.podWrites === 0 && st.leftTrue === 0,
        source: SOURCE,
        note: `audit log over ${st.observedSeconds} s from the step, through one more probe per target (${st.roundSeconds === null ? 'not within its deadline' : `${st.roundSeconds} s after the buckets were held as planned`}); ${st.leftTrue} gates left True`,
      },
      ...(st.gaps
        ? [gapRow(run, label, st.gaps, `the buckets were held as planned ${orDash(st.balancedSeconds)} s after it`)]
        : []),
    ];
  });
}

/** `shardedWatch`: the API server ran with ShardedListAndWatch (`--feature-gates`), so sharded replicas cache their buckets only. */
export function shardRows(run: SizeRun, shardedWatch = false): FigureRow[] {
  return [
    ...cpuRows(run),
    ...rssRows(run, shardedWatch),
    ...steadyRows(run),
    ...killRows(run),
    ...scaleRows(run),
    ...startupRows(run),
    ...leaseRows(run),
  ];
}

/** One line per replica of each set. */
export function replicaTable(run: SizeRun): string {
  const lines = [
    '| replicas | replica | state at the end of the steady window | leader | buckets | buckets acquired / lost since start | start-up CPU s | steady probes/s | period stretch, largest | steady CPU, % of a core | CPU per probe, ms | RSS MiB | peak RSS (VmHWM) MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of run.sets) {
    for (const m of r.members) {
      lines.push(
        `| ${r.replicas} | ${m.name} | ${m.state ?? '–'} | ${m.leader ? 'yes' : 'no'} | ${m.bucketsOwned} | ${m.bucketChanges ? `${m.bucketChanges.acquired} / ${m.bucketChanges.lost}` : '–'} | ${m.startupCpuSeconds.toFixed(1)} | ` +
          `${m.steady.probesPerSecond} | ${orDash(m.steady.stretchMax)} | ${m.steady.cpuPercent} | ${orDash(m.steady.cpuPerProbeMs)} | ${m.rssMiB} | ${m.hwmMiB} |`,
      );
    }
  }
  return lines.join('\n');
}

export interface ShardSectionInput {
  date: string;
  commit: string;
  command: string;
  machine: string;
  /** The JSON file of the run, relative to bench/. */
  rawData: string;
  result: ShardResult;
  /** The run was cut short: these are the sets it finished. */
  partial?: boolean;
}

/** The single replica's phase as the method says it, or that there was none (--no-solo). */
function soloPhase(o: ShardBenchOptions): string {
  if (!o.solo) return 'No single replica (`--no-solo`): only';
  const scale = o.scale
    ? ` (after its steady window, two more join it; once the bucket Leases show the ${o.buckets} buckets split, none above
the fair share, and one more probe per target was made, the two stop gracefully and the first holds them all again:
the scale rows)`
    : '';
  return `First one replica${scale}, then, after it stopped and
every gate was cleared (a strategic-merge \`$patch: delete\` of the condition),`;
}

function method(o: ShardBenchOptions): string {
  const period =
    o.periodSeconds > 0
      ? `every ${o.periodSeconds} s`
      : `every N / ${n(o.probesPerSecond)} s (10 s at least), so that all the replicas together probe about ${n(o.probesPerSecond)} targets a second`;
  return `Method: for each pod count a control plane of its own (etcd + kube-apiserver, no controller manager,
audit log on), the chart's RBAC rendered with \`sharding.enabled=true\`, and the pods of
\`bench/operator/pods.ts\` (${o.createConcurrency} in flight), Running before any replica starts, probed over HTTP on
${o.sharedAddresses} shared loopback listeners ${period} (timeout ${o.timeoutSeconds} s, failureThreshold ${o.failureThreshold}).
Every replica is \`node src/main.ts run --namespaces <ns> --leader-elect --shard-buckets ${o.buckets}\` with its own
POD_NAME and health port, lease duration ${o.leaseDurationSeconds} s, renew deadline ${o.renewDeadlineSeconds} s, retry period
${o.retryPeriodSeconds} s (the chart's defaults)${o.operatorArgs.length ? `, and ${o.operatorArgs.join(' ')}` : ''}. ${soloPhase(o)} ${o.replicas} fresh replicas: start-up
until the replicas' \`readygate_probes_total\` summed reach N (polled every 250 ms; a count of probes,
not of distinct pods) and until a watch sees every gate True; ${o.settleSeconds} s later, and once every
replica's period stretch is back to 1 (up to max(120 s, 2 periods)), a steady window of
max(${o.steadyMinSeconds} s, ${o.steadyPeriods} periods). CPU per probe is each process's Δ CPU time (/proc) ÷ Δ
\`readygate_probes_total\` over the window, from the per-second samples: it includes everything
the replica does (Lease renewals, the leader's policy status, the watch of every pod). A replica
that cannot keep its periods stretches them (\`readygate_probe_period_stretch\`, the largest in the
window in the table), so its probes/s falls below N ÷ period; others' work on the machine (its load
average is in the steady rows) can cause that as well as the replica's own. Peak RSS is VmHWM. Pod writes are the operator's PATCH pods/status in the audit log. Then the replica holding the
most buckets is SIGKILLed; the bucket Leases are listed every ${o.leasePollMs} ms until the survivors hold all
${o.buckets} (renewed within the lease duration), and the bench waits for the survivors to make one more
probe per target (summed) before counting the pod writes since the kill and the gates that left True.${
    o.gapSample > 0
      ? `
${n(o.gapSample)} pods spread evenly over all of them have an address of their own, on which the listeners note each
probe's time: the longest gap is the longest interval between two probes of one of them that ends after the
kill (or runs to the end of the wait, if one was not probed again within 2 periods and a minute of the takeover).`
      : ''
  }`;
}

/** The Markdown section for bench/RESULTS.md. */
export function shardSection(i: ShardSectionInput): string {
  const { result: res } = i;
  const o = res.options;
  const runs = res.runs.map(
    (
      r,
    ) => `### ${n(r.pods)} pods, probe period ${r.periodSeconds} s (pods created and Running in ${r.createSeconds} s by the bench)

${figuresTable(shardRows(r, o.featureGates?.ShardedListAndWatch === true))}

${replicaTable(r)}
`,
  );
  return `## Sharding across replicas (issue 14)

Run with \`${i.command}\` on ${i.date} at commit ${i.commit} (${i.machine}), ${(res.seconds / 60).toFixed(1)} min in all.
Raw data, with every replica's per-second samples: [${i.rawData}](${i.rawData}).${i.partial ? '\n**Cut short**: only the sets of replicas below finished.' : ''}

${runs.join('\n')}
${method(o)}
`;
}
