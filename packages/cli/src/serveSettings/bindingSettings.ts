import { SluiceError } from '@sluice/core';
import type { BindingPolicy } from '@sluice/server';
import { objectAt } from './configFile.js';
import { SERVE_ENV } from './serveEnv.js';
import type { SettingSources } from './settingSources.js';

/**
 * createServer's `deviceBinding`: each of `maxDrift`, `minMatch` and `driftCooldownMs` from its
 * flag (`--binding-max-drift`, `--binding-min-match`, `--binding-drift-cooldown` in seconds), else
 * its variable, else the file's `deviceBinding` section (the cooldown there in ms). createServer
 * checks the values (a minMatch below 3 is refused); this only refuses what is not a number.
 */
export function bindingSettings(src: SettingSources): Partial<BindingPolicy> | undefined {
  const file = objectAt(src.file, 'deviceBinding') ?? {};
  const { flags } = src;
  const policy: Partial<BindingPolicy> = {};
  const take = (
    field: keyof BindingPolicy,
    flag: string,
    text: string | undefined,
    env: string,
    scale: number,
  ) => {
    const [fromEnv, envName] = src.fromEnv(env);
    const given = text ?? (fromEnv as string | undefined);
    if (given !== undefined) {
      const origin = text !== undefined ? flag : envName;
      if (!/^\d+$/.test(given)) {
        throw new SluiceError(
          'ERR_INVALID_ARG',
          `${origin} must be a whole number ≥ 0, got '${given}'`,
        );
      }
      src.origins.set(`deviceBinding.${field}`, origin);
      policy[field] = Number(given) * scale;
    } else if (file[field] !== undefined) {
      src.origins.set(`deviceBinding.${field}`, src.fileOrigin);
      policy[field] = file[field] as number;
    }
  };
  take('maxDrift', '--binding-max-drift', flags.bindingMaxDrift, SERVE_ENV.bindingMaxDrift, 1);
  take('minMatch', '--binding-min-match', flags.bindingMinMatch, SERVE_ENV.bindingMinMatch, 1);
  take(
    'driftCooldownMs',
    '--binding-drift-cooldown',
    flags.bindingDriftCooldown,
    SERVE_ENV.bindingDriftCooldown,
    1000,
  );
  return Object.keys(policy).length === 0 ? undefined : policy;
}
