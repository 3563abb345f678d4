import { describe, expect, it } from 'vitest';
import { parseIptablesSave, splitRule, undoCommands } from '../support/iptables-diff.ts';

const before = [
  '*filter',
  ':INPUT ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  ':MINE - [0:0]',
  '-A INPUT -j MINE',
  'COMMIT',
  '',
].join('\n');

// What the kubelet added on this machine (iptables-save after the real node started).
const after = [
  '*mangle',
  ':PREROUTING ACCEPT [0:0]',
  ':KUBE-IPTABLES-HINT - [0:0]',
  'COMMIT',
  '*filter',
  ':INPUT ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  ':MINE - [0:0]',
  ':KUBE-FIREWALL - [0:0]',
  ':CNI-FORWARD - [0:0]',
  // Rule text only (podman's own bridge network): nothing is sent anywhere.
  '-A CNI-FORWARD -s 10.88.0.3/32 -j ACCEPT',
  '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD',
  '-A INPUT -j MINE',
  '-A INPUT -j KUBE-FIREWALL',
  '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -j DROP',
  'COMMIT',
  '',
].join('\n');

describe('iptables diff', () => {
  it("undoes only what the kubelet added: its new rules deleted, then its chains; podman's stay", () => {
    expect(undoCommands(parseIptablesSave(before), parseIptablesSave(after))).toEqual([
      ['-t', 'filter', '-D', 'INPUT', '-j', 'KUBE-FIREWALL'],
      [
        '-t',
        'filter',
        '-D',
        'KUBE-FIREWALL',
        '!',
        '-s',
        '127.0.0.0/8',
        '-d',
        '127.0.0.0/8',
        '-m',
        'comment',
        '--comment',
        'block incoming localnet connections',
        '-j',
        'DROP',
      ],
      ['-t', 'mangle', '-F', 'KUBE-IPTABLES-HINT'],
      ['-t', 'mangle', '-X', 'KUBE-IPTABLES-HINT'],
      ['-t', 'filter', '-F', 'KUBE-FIREWALL'],
      ['-t', 'filter', '-X', 'KUBE-FIREWALL'],
    ]);
  });

  it('has nothing to undo when nothing changed, and never touches built-in or foreign chains', () => {
    expect(undoCommands(parseIptablesSave(after), parseIptablesSave(after))).toEqual([]);
    expect(undoCommands(parseIptablesSave(''), parseIptablesSave(before))).toEqual([]);
  });

  it('splits quoted arguments with escaped quotes', () => {
    expect(splitRule('-A X -m comment --comment "a \\"b\\" c" -j DROP')).toEqual([
      '-A',
      'X',
      '-m',
      'comment',
      '--comment',
      'a "b" c',
      '-j',
      'DROP',
    ]);
  });
});
