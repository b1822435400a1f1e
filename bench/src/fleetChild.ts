// The bench side of fleetServer.ts: forks one server instance and asks it for things over IPC.
import { type ChildProcess, fork } from 'node:child_process';
import type { ServerOptions } from '@sluice/server';
import type { FleetServerJob, FleetServerMessage, FleetServerRequest } from './fleetServer.js';

export interface ServerChild {
  url: string;
  pid: number;
  /** Sends `request` and resolves with the instance's answer (rejects on its `error`). */
  ask(request: FleetServerRequest): Promise<FleetServerMessage>;
  /** CPU ms the instance has used so far. */
  cpuMs(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Forks fleetServer.js with `options`; resolves once it listens. `children` tracks the process.
 * The envelope cache is on (the default) and the envelope route reports its steps
 * (`SLUICE_SERVER_TIMING=1`), so the bench can tell a cache hit from a miss.
 */
export async function startServerChild(
  options: ServerOptions,
  children: Set<ChildProcess>,
): Promise<ServerChild> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLUICE_SERVER_TIMING: '1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  delete env.SLUICE_ENVELOPE_CACHE;
  const proc = fork(new URL('./fleetServer.js', import.meta.url).pathname, [], {
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const next = () =>
    new Promise<FleetServerMessage>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`fleetServer exited with ${code}`));
      proc.once('exit', onExit);
      proc.once('message', (m: FleetServerMessage) => {
        proc.off('exit', onExit);
        if (m.type === 'error') reject(new Error(`fleetServer: ${m.message}`));
        else resolve(m);
      });
    });
  const listening = next();
  proc.send({ options } satisfies FleetServerJob);
  const m = await listening;
  if (m.type !== 'listening') throw new Error(`fleetServer said ${m.type}`);
  const ask = (request: FleetServerRequest) => {
    const answer = next();
    proc.send(request);
    return answer;
  };
  return {
    url: m.url,
    pid: proc.pid ?? 0,
    ask,
    async cpuMs() {
      const a = await ask({ type: 'cpu' });
      if (a.type !== 'cpu') throw new Error(`fleetServer said ${a.type}`);
      return a.cpuMs;
    },
    async close() {
      proc.send({ type: 'close' } satisfies FleetServerRequest);
      await exited;
      children.delete(proc);
    },
  };
}
