import { isSluiceError } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { Limiter } from './limiter.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('Limiter', () => {
  it('never runs more than its limit at once, and runs everything', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let peak = 0;
    const done = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 1 + (i % 4)));
          running--;
          return i;
        }),
      ),
    );
    expect(done).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(3);
    expect(limiter.active).toBe(0);
  });

  it('serves waiters first come first served; one alone in line takes every free slot it asked for', async () => {
    const limiter = new Limiter(4);
    expect(await limiter.acquire(3)).toBe(3);
    expect(await limiter.acquire(5)).toBe(1);
    const order: string[] = [];
    const a = limiter.acquire(4).then((n) => order.push(`a${n}`));
    const b = limiter.acquire(4).then((n) => order.push(`b${n}`));
    await tick();
    expect(order).toEqual([]);
    limiter.release(3);
    await Promise.all([a, b]);
    // a was not alone in line: one slot; b then took the two left.
    expect(order).toEqual(['a1', 'b2']);
    expect(limiter.active).toBe(4);
  });

  it('an aborted waiter leaves the line with ERR_ABORTED and its turn goes to the next', async () => {
    const limiter = new Limiter(1);
    await limiter.acquire();
    const ac = new AbortController();
    const first = limiter.acquire(1, ac.signal);
    const second = limiter.acquire(1);
    ac.abort();
    await expect(first).rejects.toSatisfy((e) => isSluiceError(e, 'ERR_ABORTED'));
    limiter.release();
    expect(await second).toBe(1);
    expect(limiter.active).toBe(1);
  });

  it('rejects a bad limit and a release of slots it never gave', async () => {
    expect(() => new Limiter(0)).toThrow(/positive integer/);
    expect(() => new Limiter(1.5)).toThrow(/positive integer/);
    const limiter = new Limiter(2);
    expect(() => limiter.release()).toThrow(/only 0 taken/);
    await expect(async () => limiter.acquire(0)).rejects.toThrow(/positive integer/);
  });
});
