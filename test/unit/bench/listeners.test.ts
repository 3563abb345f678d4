// The bench's listener farm keeps the probe times of tracked addresses (one pod each) and answers
// the longest gap since a moment: the sharding bench's measure of how long a pod went unprobed.
// It also takes addresses down and up, as the operator bench's mass flip does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressBlock, type ListenerFarm, startListenerFarm } from '../../../bench/operator/listeners.ts';

let farm: ListenerFarm;
const [tracked, other] = addressBlock(54, 2) as [string, string];
const get = async (ip: string) => (await fetch(`http://${ip}:${farm.port}/`)).text();

beforeAll(async () => {
  farm = await startListenerFarm([tracked, other], 60, [tracked]);
});
afterAll(async () => {
  await farm?.stop();
});

describe('listener farm gaps', () => {
  it('reports only tracked addresses, open until a request comes after the moment', async () => {
    await get(tracked);
    const since = Date.now();
    const before = await farm.gaps(since);
    expect(Object.keys(before)).toEqual([tracked]);
    expect(before[tracked]?.open).toBe(true);
    await get(other);
    expect((await farm.gaps(since))[tracked]?.open).toBe(true);
    await get(tracked);
    const after = (await farm.gaps(since))[tracked];
    expect(after?.open).toBe(false);
    expect(after?.longestMs).toBeGreaterThanOrEqual(0);
  });

  it('takes an address down (connections refused) and up again on the same port', async () => {
    await farm.down([other]);
    await expect(get(other)).rejects.toThrow();
    await farm.up([other]);
    expect(await get(other)).toBe('ok\n');
  });
});
