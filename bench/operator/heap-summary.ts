// Summarises a V8 heap snapshot too large for JSON.parse (V8 strings stop at ~512 MiB): streams
// the file, keeps nodes and strings, and prints self size by (type, name), largest first, with
// counts, plus the largest strings. Used to find what each pod costs in the operator:
//   node bench/operator/heap-summary.ts <file.heapsnapshot> [rows] [perObjects]
// With perObjects (e.g. 10000 pods), every row also shows bytes per object.
import { createReadStream } from 'node:fs';

interface Meta {
  node_fields: string[];
  node_types: [string[]];
}

async function main(): Promise<void> {
  const [file, rowsArg, perArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [rows] [perObjects]');
  const rows = Number(rowsArg ?? 40);
  const per = Number(perArg ?? 0);
  let meta: Meta | undefined;
  let nodeCount = 0;
  let nodes = new Float64Array(0);
  let n = 0;
  const strings: string[] = [];
  // States: header text, then the arrays we want, skipping the rest.
  let state: 'header' | 'nodes' | 'seek-strings' | 'strings' | 'done' = 'header';
  let header = '';
  let num = '';
  let inString = false;
  let escaped = false;
  let str: string[] = [];
  let pending = ''; // text carried over while seeking a marker
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 22 })) {
    let text = chunk as string;
    if (state === 'header') {
      header += text;
      const at = header.indexOf('"nodes":[');
      if (at < 0) continue;
      const head = header.slice(0, header.lastIndexOf(',', at));
      const parsed = JSON.parse(`${head}}`) as { snapshot: { meta: Meta; node_count: number } };
      meta = parsed.snapshot.meta;
      nodeCount = parsed.snapshot.node_count;
      nodes = new Float64Array(nodeCount * meta.node_fields.length);
      text = header.slice(at + '"nodes":['.length);
      header = '';
      state = 'nodes';
    }
    let i = 0;
    if (state === 'nodes') {
      for (; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c >= 48 && c <= 57) num += text[i];
        else {
          if (num !== '') {
            nodes[n++] = Number(num);
            num = '';
          }
          if (c === 93 /* ] */) {
            state = 'seek-strings';
            i++;
            break;
          }
        }
      }
    }
    if (state === 'seek-strings') {
      pending += text.slice(i);
      const at = pending.indexOf('"strings":[');
      if (at < 0) {
        pending = pending.slice(-16);
        continue;
      }
      text = pending.slice(at + '"strings":['.length);
      pending = '';
      i = 0;
      state = 'strings';
    }
    if (state === 'strings') {
      let start = i;
      for (; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 92) escaped = true;
          else if (c === 34) {
            str.push(text.slice(start, i));
            strings.push(JSON.parse(`"${str.join('')}"`) as string);
            str = [];
            inString = false;
          }
        } else if (c === 34) {
          inString = true;
          start = i + 1;
        } else if (c === 93) {
          state = 'done';
          break;
        }
      }
      if (inString) str.push(text.slice(start));
    }
    if (state === 'done') break;
  }
  if (!meta) throw new Error('not a heap snapshot');
  const f = meta.node_fields;
  const width = f.length;
  const types = meta.node_types[0];
  const [iType, iName, iSize] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const groups = new Map<string, { count: number; bytes: number }>();
  const big: Array<{ bytes: number; text: string }> = [];
  let total = 0;
  for (let k = 0; k < nodeCount; k++) {
    const base = k * width;
    const type = types[nodes[base + iType]!] ?? '?';
    const size = nodes[base + iSize]!;
    const name = strings[nodes[base + iName]!] ?? '';
    total += size;
    const label =
      type === 'string' || type === 'concatenated string' || type === 'sliced string'
        ? `${type}`
        : `${type} ${name.slice(0, 60)}`;
    const g = groups.get(label) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(label, g);
    if (type === 'string' && size > 4096) big.push({ bytes: size, text: name.slice(0, 80) });
  }
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(`${nodeCount} nodes, ${mib(total)} MiB self size in all`);
  const sorted = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, rows);
  for (const [label, g] of sorted) {
    const perObj =
      per > 0 ? `  ${(g.bytes / per).toFixed(0).padStart(7)} B/obj ${(g.count / per).toFixed(1).padStart(6)}/obj` : '';
    console.log(`${mib(g.bytes).padStart(8)} MiB ${String(g.count).padStart(9)}  ${label}${perObj}`);
  }
  console.log('largest strings:');
  for (const s of big.sort((a, b) => b.bytes - a.bytes).slice(0, 10))
    console.log(`${mib(s.bytes).padStart(8)} MiB  ${JSON.stringify(s.text)}`);
}

await main();
