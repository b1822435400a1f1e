import { describe, expect, it } from 'vitest';
import { ProgressBar, renderProgress } from './progressBar.js';

const MiB = 1024 * 1024;

/** A stderr stand-in of a given width that keeps what is written. */
function terminal(columns: number) {
  const writes: string[] = [];
  const stream = {
    columns,
    write: (s: string) => writes.push(s) > 0,
  } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

describe('renderProgress', () => {
  const at = (columns: number, label = 'models/some-long-resource-name.onnx') =>
    renderProgress({ label, done: 300 * MiB, total: 1024 * MiB, rate: 50e6, columns });

  it('fills the terminal but one column, whatever its width', () => {
    for (const columns of [200, 120, 80, 60, 40, 30, 20, 8]) {
      const line = at(columns);
      expect(line.length, `${columns}: ${line}`).toBeLessThanOrEqual(columns - 1);
    }
    expect(at(120)).toMatch(/^models\/some-long-resource-name\.onnx \[#+-+\] {2}29% /);
    expect(at(120).length).toBe(119);
  });

  it('shortens a long label before the bar gets too short, and drops both when there is no room', () => {
    const narrow = at(70);
    expect(narrow).toMatch(/^models\/… \[[#-]{10}\] {2}29% 300\.0 MiB/);
    expect(at(70, 'm/x')).toMatch(/^m\/x \[[#-]{15}\] {2}29%/);
    // Without room for the byte counts: the percentage, the rate and the ETA only.
    expect(at(40)).toMatch(/^\S*…? ?\[[#-]{10,}\] {2}29% 50\.0 MB\/s ETA {2}0:16$/);
    expect(at(28)).toBe(' 29% 50.0 MB/s ETA  0:16');
  });

  it('says the rate and the time left, or that neither is known yet', () => {
    expect(at(120)).toMatch(/ 50\.0 MB\/s ETA +0:16$/);
    const unknown = renderProgress({
      label: 'x',
      done: 0,
      total: 10,
      rate: undefined,
      columns: 80,
    });
    expect(unknown).toMatch(/-- MB\/s ETA --:--$/);
    const long = renderProgress({ label: 'x', done: 0, total: 1e12, rate: 1e6, columns: 80 });
    expect(long).toMatch(/ETA 277:46:40$/);
  });
});

describe('ProgressBar', () => {
  it('measures the rate over the last seconds, not since the start', () => {
    let now = 0;
    const { stream, writes } = terminal(80);
    const bar = new ProgressBar('r', stream, () => now);
    // 10 s at 1 MB/s, then 10 s at 100 MB/s: the average would be ~50 MB/s.
    let done = 0;
    for (; now < 20_000; now += 200) {
      done += now < 10_000 ? 0.2e6 : 20e6;
      bar.update(done, 2e9);
    }
    expect(writes.at(-1)).toMatch(/ 100\.0 MB\/s ETA/);
  });

  it('redraws at most ten times a second, the last update always, and ends its line once', () => {
    let now = 0;
    const { stream, writes } = terminal(80);
    const bar = new ProgressBar('r', stream, () => now);
    for (let i = 1; i <= 100; i++, now += 10) bar.update(i, 100);
    expect(writes.length).toBe(11); // t = 0, 100, …, 900 ms and the final 100 %
    expect(writes.every((w) => w.startsWith('\r') && w.endsWith('\u001b[K'))).toBe(true);
    bar.finish();
    bar.finish();
    expect(writes.filter((w) => w === '\n')).toHaveLength(1);
  });
});
