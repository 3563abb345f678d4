// Configuration files of the real node (test/support/node.ts), as pure functions of its layout:
// containerd's (own root, state, socket and CRI settings), the CNI network and the kubelet's.
// Why each unusual setting: docs/testing.md, "The real node".

/** Where one node keeps everything; all paths below the node's own directory. */
export interface NodeLayout {
  dir: string;
  containerdSocket: string;
  /** runc's state directory for containerd's shims: runc list/kill/delete find the containers there. */
  runcRoot: string;
  cniConfDir: string;
  nodeName: string;
  /** The address kube-apiserver reaches the kubelet at: on the harness's bridge. */
  nodeIP: string;
  kubeletPort: number;
  kubeletHealthzPort: number;
  /** The pod network, a /24, on the harness's bridge. */
  podSubnet: string;
  /** The pod network's gateway on the bridge: pods' routes to the Services and the node IP. */
  gateway: string;
  serviceCIDR: string;
  bridge: string;
  networkName: string;
  sandboxImage: string;
}

const toml = (s: string) => JSON.stringify(s);

/** containerd 1.6 config (version 2): nothing under /run/containerd or /var/lib/containerd. */
export function containerdConfig(l: NodeLayout): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${toml(`${l.dir}/containerd/root`)}`,
    `state = ${toml(`${l.dir}/containerd/state`)}`,
    // /opt/containerd and snapshotters this node does not use stay untouched.
    'disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    '[grpc]',
    `  address = ${toml(l.containerdSocket)}`,
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.runtime.v1.linux"]',
    `  runtime_root = ${toml(`${l.dir}/containerd/runtime-v1`)}`,
    `[${cri}]`,
    `  sandbox_image = ${toml(l.sandboxImage)}`,
    // No CAP_SYS_RESOURCE here: without it runc fails to start the sandbox ("can't get final child's PID from pipe: EOF").
    '  restrict_oom_score_adj = true',
    // The default streaming port 10010 would clash with another node or a system containerd.
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  BinaryName = "runc"',
    `  Root = ${toml(l.runcRoot)}`,
    '  SystemdCgroup = false',
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${toml(l.cniConfDir)}`,
    '  max_conf_num = 1',
    '',
  ].join('\n');
}

/**
 * The bridge plugin on the harness's own bridge, which already holds the gateway address, so the
 * plugin neither enables IP forwarding nor masquerades (no iptables rules); pods get no default
 * route: they reach the host and each other, nothing outside this machine, and through the
 * gateway only the Service CIDR (kube-proxy DNATs it on the host) and the node IP.
 */
export function cniConfig(l: NodeLayout): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: l.networkName,
      plugins: [
        {
          type: 'bridge',
          bridge: l.bridge,
          isGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: l.podSubnet, gateway: l.gateway }]],
            routes: [
              { dst: l.serviceCIDR, gw: l.gateway },
              { dst: `${l.nodeIP}/32`, gw: l.gateway },
            ],
            dataDir: `${l.dir}/cni/ipam`,
          },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

/**
 * KubeletConfiguration for cgroup v1 hybrid without CAP_SYS_RESOURCE (cgroupfs, no QoS
 * cgroups, no node allocatable enforcement), x509 and webhook authentication, webhook authorization.
 */
export function kubeletConfig(l: NodeLayout, files: { clientCA: string; cert: string; key: string }): string {
  const config = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: l.nodeIP,
    port: l.kubeletPort,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: l.kubeletHealthzPort,
    tlsCertFile: files.cert,
    tlsPrivateKeyFile: files.key,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: files.clientCA },
    },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    cgroupDriver: 'cgroupfs',
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failCgroupV1: false,
    failSwapOn: false,
    podLogsDir: `${l.dir}/pod-logs`,
    volumePluginDir: `${l.dir}/kubelet/volume-plugins`,
    resolvConf: '',
    // Tests wait on status changes; the defaults (10 s) are for fleets.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    // The host's disk is shared with everything else: no evictions, no image garbage collection.
    evictionHard: { 'memory.available': '0%', 'nodefs.available': '0%', 'imagefs.available': '0%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    registerNode: true,
    rotateCertificates: false,
    serverTLSBootstrap: false,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * KubeProxyConfiguration: iptables mode, listening on loopback only, and no kernel settings
 * written (this sandbox refuses them): conntrack sizes and timeouts 0 leave the kernel's as they
 * are, no NodePorts on localhost (they need route_localnet), oomScoreAdj as inherited.
 */
export function kubeProxyConfig(
  l: NodeLayout,
  o: { kubeconfig: string; healthzPort: number; metricsPort: number },
): string {
  const config = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: o.kubeconfig },
    hostnameOverride: l.nodeName,
    bindAddress: l.nodeIP,
    healthzBindAddress: `127.0.0.1:${o.healthzPort}`,
    metricsBindAddress: `127.0.0.1:${o.metricsPort}`,
    mode: 'iptables',
    clusterCIDR: l.podSubnet,
    detectLocalMode: 'ClusterCIDR',
    nodePortAddresses: [`${l.nodeIP}/32`],
    iptables: { localhostNodePorts: false, masqueradeAll: false, syncPeriod: '30s', minSyncPeriod: '0s' },
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeout: '0s',
      tcpCloseWaitTimeout: '0s',
      udpTimeout: '0s',
      udpStreamTimeout: '0s',
    },
    oomScoreAdj: 0,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
