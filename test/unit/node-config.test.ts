import { describe, expect, it } from 'vitest';
import {
  cniConfig,
  containerdConfig,
  kubeletConfig,
  kubeProxyConfig,
  type NodeLayout,
} from '../support/node-config.ts';

const layout: NodeLayout = {
  dir: '/tmp/readygate-node-x',
  containerdSocket: '/tmp/readygate-node-x/containerd.sock',
  runcRoot: '/tmp/readygate-node-x/runc',
  cniConfDir: '/tmp/readygate-node-x/cni/net.d',
  nodeName: 'readygate-node',
  // Configuration text only: no traffic. On a real node these are addresses of the harness's own bridge.
  nodeIP: '10.245.7.1',
  kubeletPort: 12001,
  kubeletHealthzPort: 12002,
  podSubnet: '10.244.7.0/24',
  gateway: '10.244.7.1',
  serviceCIDR: '10.0.0.0/24',
  bridge: 'rgbabc123',
  networkName: 'readygate-abc123',
  sandboxImage: 'readygate.test/pause:0123',
};

describe('the real node configuration', () => {
  it("keeps containerd off the system service's paths and default streaming port", () => {
    const toml = containerdConfig(layout);
    expect(toml).not.toMatch(/\/run\/containerd|\/var\/lib\/containerd|\/opt\/containerd|10010/);
    for (const line of [
      'root = "/tmp/readygate-node-x/containerd/root"',
      'state = "/tmp/readygate-node-x/containerd/state"',
    ]) {
      expect(toml).toContain(line);
    }
    expect(toml).toContain('address = "/tmp/readygate-node-x/containerd.sock"');
    expect(toml).toContain('Root = "/tmp/readygate-node-x/runc"');
    expect(toml).toContain('restrict_oom_score_adj = true');
    expect(toml).toContain('sandbox_image = "readygate.test/pause:0123"');
  });

  it('has the bridge plugin neither masquerade nor route pods off the machine, with IPAM state in the node dir', () => {
    const conf = JSON.parse(cniConfig(layout)) as { plugins: { ipam?: { routes?: unknown } }[] };
    expect(conf.plugins[0]).toMatchObject({
      type: 'bridge',
      bridge: 'rgbabc123',
      isGateway: false,
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.244.7.0/24', gateway: '10.244.7.1' }]],
        dataDir: '/tmp/readygate-node-x/cni/ipam',
      },
    });
    // Routes through the gateway to the Services and the node IP only: no default route.
    expect(conf.plugins[0]?.ipam?.routes).toEqual([
      { dst: '10.0.0.0/24', gw: '10.244.7.1' },
      { dst: '10.245.7.1/32', gw: '10.244.7.1' },
    ]);
    expect(JSON.stringify(conf)).not.toContain('"0.0.0.0/0"');
  });

  it('runs kube-proxy in iptables mode on loopback and the node IP, writing no kernel settings', () => {
    const config = JSON.parse(
      kubeProxyConfig(layout, { kubeconfig: '/kp.kubeconfig', healthzPort: 12003, metricsPort: 12004 }),
    );
    expect(config).toMatchObject({
      kind: 'KubeProxyConfiguration',
      mode: 'iptables',
      bindAddress: '10.245.7.1',
      healthzBindAddress: '127.0.0.1:12003',
      metricsBindAddress: '127.0.0.1:12004',
      clusterCIDR: '10.244.7.0/24',
      nodePortAddresses: ['10.245.7.1/32'],
      iptables: { localhostNodePorts: false, masqueradeAll: false },
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      clientConnection: { kubeconfig: '/kp.kubeconfig' },
    });
  });

  it('serves the kubelet on the node address only, with x509 and webhook auth and no anonymous access', () => {
    const config = JSON.parse(kubeletConfig(layout, { clientCA: '/ca.crt', cert: '/k.crt', key: '/k.key' }));
    expect(config).toMatchObject({
      address: '10.245.7.1',
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: '/ca.crt' } },
      authorization: { mode: 'Webhook' },
      containerRuntimeEndpoint: 'unix:///tmp/readygate-node-x/containerd.sock',
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      cgroupsPerQOS: false,
      enforceNodeAllocatable: [],
      failSwapOn: false,
    });
  });
});
