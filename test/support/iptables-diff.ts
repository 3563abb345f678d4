// What the real node added to iptables (the kubelet's KUBE-FIREWALL, canary and hint chains; the
// bridge plugin adds none with ipMasq off), from two iptables-save dumps, and the commands that
// remove it. Only the node's own: other programs on the machine (podman, buildah: CNI-* chains)
// change iptables at the same time, and their rules are never touched.

export interface IptablesDump {
  /** table -> user-defined chain names (built-in chains have a policy and cannot be deleted) */
  chains: Map<string, Set<string>>;
  /** table -> rules, as `-A CHAIN ...` lines */
  rules: Map<string, string[]>;
}

export function parseIptablesSave(text: string): IptablesDump {
  const chains = new Map<string, Set<string>>();
  const rules = new Map<string, string[]>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      chains.set(table, new Set());
      rules.set(table, []);
    } else if (line.startsWith(':') && table) {
      const [name, policy] = line.slice(1).split(' ');
      if (name && policy === '-') chains.get(table)?.add(name);
    } else if (line.startsWith('-A ') && table) {
      rules.get(table)?.push(line);
    }
  }
  return { chains, rules };
}

/** Splits an iptables-save rule into arguments (it double-quotes arguments with spaces). */
export function splitRule(line: string): string[] {
  const args: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? ''));
  }
  return args;
}

/**
 * The node's chains: the kubelet's and kube-proxy's KUBE-*, and the harness's own READYGATE-*
 * (node-net.ts). A rule is the node's if it is in one or jumps to one.
 */
export const isNodeChain = (name: string) => name.startsWith('KUBE-') || name.startsWith('READYGATE-');

export function isKubeletRule(args: string[]): boolean {
  const target = args[args.indexOf('-j') + 1] ?? '';
  return isNodeChain(args[1] ?? '') || (args.includes('-j') && isNodeChain(target));
}

/**
 * iptables argument lists that undo what the kubelet added between `before` and `after`: its new
 * rules deleted, then its new chains flushed and deleted. Rules and chains that were there before,
 * and anything not the kubelet's (isKubeletRule), are never touched.
 */
export function undoCommands(before: IptablesDump, after: IptablesDump): string[][] {
  const commands: string[][] = [];
  for (const [table, rules] of after.rules) {
    const old = new Set(before.rules.get(table) ?? []);
    for (const rule of rules) {
      const args = splitRule(rule);
      if (old.has(rule) || !isKubeletRule(args)) continue;
      commands.push(['-t', table, '-D', ...args.slice(1)]);
    }
  }
  for (const [table, chains] of after.chains) {
    const old = before.chains.get(table) ?? new Set<string>();
    const added = [...chains].filter((c) => !old.has(c) && isNodeChain(c));
    for (const chain of added) commands.push(['-t', table, '-F', chain]);
    for (const chain of added) commands.push(['-t', table, '-X', chain]);
  }
  return commands;
}
