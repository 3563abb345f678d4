// The help texts of the commands, apart from the commands themselves: `check --help` and
// `explain --help` print them without loading client-node (src/cli/main.ts). They are also the
// one list of each command's flags that shell completion is made from (src/cli/completion.ts).

export const HELP = `Usage: readygate <command> [flags]

Commands:
  run         run the operator (see: readygate run --help)
  check       run one probe round of a ProbePolicy locally and print the result
  explain     explain why a pod is or is not Ready, gate by gate
  release     after uninstalling the operator, set every readygate gate True so no pod stays NotReady
  version     print the version (also: -v, --version; --output json)
  completion  print a shell completion script: bash, zsh or fish

Exit codes: 0 ok, 1 check failed, pod not Ready or release refused, 2 usage error, 3 cluster or
API error.
`;

export const VERSION_HELP = `Usage: readygate version [--output text|json]

Prints readygate's version and the Node.js version it runs on. -v and --version are the same
command.
`;

export const COMPLETION_HELP = `Usage: readygate completion bash|zsh|fish

Prints a script that completes readygate's commands and flags in that shell. Load it with
  source <(readygate completion bash)        # in ~/.bashrc
  source <(readygate completion zsh)         # in ~/.zshrc, after compinit
  readygate completion fish | source         # in ~/.config/fish/config.fish
`;

export const CHECK_HELP = `Usage: readygate check -f POLICY.yaml (--pod NAME [-n NAMESPACE] | --address IP [--port NAME=NUMBER]...)
                       [--kubeconfig PATH] [--output text|json]

First checks every ProbePolicy document of the file offline as the API server would on a create
with strict field validation: unknown fields, types, bounds, enums, required fields and the CRD's
CEL rules, with the API server's defaults applied. Documents of other kinds are skipped with a
note. A policy the API server would refuse is reported field by field and nothing is probed.

Then runs each policy's probe once against a pod (its IP and named ports read from the cluster;
without -n, the namespace of the kubeconfig context) or a bare address, and prints the result and
the condition message readygate would write. A bare address has no container ports: give each
named port the policy uses with --port NAME=NUMBER (repeatable). --output json prints an object
per policy: the object itself for a file with one policy, an array of them for several.

Exit code 0 when every probe passes, 1 when one fails, 2 on invalid input (bad flags, an
unreadable or non-YAML file, a policy the API server would refuse), 3 when the cluster cannot be
read or the API server would not run an exec probe.
`;

export const EXPLAIN_HELP = `Usage: readygate explain pod/NAME [-n NAMESPACE] [--kubeconfig PATH] [--output text|json]
                        [--operator-namespace NS]

For each readiness gate of the pod: the ProbePolicy that provides it, the condition's status,
reason, message and age, and what is blocking Ready; and each ProbePolicy that selects the pod
although the pod does not list its gate (it cannot be gated until recreated), with what recreates
it. Exit code 0 when the pod is Ready, 1 when it is not, 2 on usage errors, 3 when the cluster
cannot be read.

--output json prints the same as one object; its times (a gate's since, the owner's renewed)
are RFC 3339 timestamps instead of ages.

When the operator shards (readygate run --shard-buckets), also the replica that owns the pod:
the holder of the Lease of the pod's bucket, read from the bucket Leases in the operator's
namespace (--operator-namespace, default readygate-system; needs list on leases there). Without
that permission the owner is "unknown"; without live bucket Leases nothing is shown.
`;

export const RELEASE_HELP = `Usage: readygate release [-n NAMESPACE] [--dry-run] [--force] [--kubeconfig PATH]
                         [--operator-namespace NS] [--leader-election-id NAME]
                         [--allowed-condition-prefixes a/,b/]

After \`helm uninstall\`: sets every readygate readiness gate condition that is not True to True,
reason Uninstalled, on the pods of every namespace (or of -n NAMESPACE), so that no pod stays
NotReady behind a gate nothing will ever probe again. A gate with no condition at all is
released too: you ask for it. Conditions already True are not written; pods being deleted or
finished are skipped. Readygate gates are those under --allowed-condition-prefixes (default
readygate.dev/, as \`readygate run\`); other gates are never touched.

It refuses, with exit code 1, while the operator still holds a Lease renewed within its
duration in --operator-namespace (default readygate-system): the leader Lease
(--leader-election-id, default readygate) or a shard Lease. A running operator would write the
gates back. Wait for the Lease to expire, or pass --force. Without leader election the operator
holds no Lease: make sure it is gone first.

  --dry-run   print what would be released, write nothing
  --force     skip the Lease check

Exit code 0 when every gate was released (or nothing was to be), 1 when refused, 2 on usage
errors, 3 when the cluster cannot be read or a write failed (the command can be run again).
`;

/** The name a kubectl plugin must have on PATH: `kubectl readygate …` runs it. */
export const PLUGIN_NAME = 'kubectl-readygate';

/**
 * Pure: how the user invoked the command line, from the path it was started by (process.argv[1],
 * which keeps the name of a symlink such as npm's or krew's bin): `kubectl readygate` when run as
 * the kubectl plugin, else `readygate`.
 */
export function programName(argv1: string | undefined): string {
  const base = (argv1 ?? '').split(/[\\/]/).pop() ?? '';
  return base.replace(/\.(js|mjs|cmd|exe)$/i, '') === PLUGIN_NAME ? 'kubectl readygate' : 'readygate';
}

const COMMAND_AFTER = /\breadygate (?=<command>|(?:run|check|explain|release|version|completion)\b)/g;

/** Pure: a help text with `readygate <command>` written as the user invokes it. */
export function asProgram(text: string, program: string): string {
  return program === 'readygate' ? text : text.replace(COMMAND_AFTER, `${program} `);
}
