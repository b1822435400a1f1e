import { SluiceError } from '@sluice/protocol';

/**
 * How far a device may drift from its binding and still be accepted (docs/SECURITY.md, "Device
 * binding and drift"). A device whose hash changed is accepted when at least
 * `max(minMatch, n − maxDrift)` of the n bound factor digests are still presented unchanged.
 */
export interface BindingPolicy {
  /** Bound factors that may differ or be missing (default 1: all but one must match). */
  maxDrift: number;
  /** Fewest factors that must match, whatever n (default and least 3). */
  minMatch: number;
  /**
   * After the binding moved to a drifted device, how long (ms) a further drift is refused
   * (default 24 h): two devices one factor apart cannot take turns on one account.
   */
  driftCooldownMs: number;
}

/**
 * The factors that tell one machine from another of the same model (docs/FORMAT.md §7.1); the
 * others (CPU, core count, memory, maker and model) are shared by every machine of a model. A
 * drifted device must still present at least one of these unchanged: else three matching factors
 * could all be ones any machine of that model has.
 */
export const IDENTIFYING_FACTORS: readonly string[] = Object.freeze([
  'system.uuid',
  'system.serial',
  'board.serial',
  'disk.serial',
  'os.machineId',
]);

/** The floor of `minMatch`: fewer matching factors identify too little. */
export const MIN_MATCH_FLOOR = 3;

export const DEFAULT_BINDING_POLICY: Readonly<BindingPolicy> = Object.freeze({
  maxDrift: 1,
  minMatch: MIN_MATCH_FLOOR,
  driftCooldownMs: 24 * 60 * 60 * 1000,
});

/** The policy over its defaults; a bad value is ERR_INVALID_ARG naming `deviceBinding.<field>`. */
export function resolveBindingPolicy(given: Partial<BindingPolicy> = {}): BindingPolicy {
  const policy = { ...DEFAULT_BINDING_POLICY, ...given };
  const check = (field: keyof BindingPolicy, least: number) => {
    const v = policy[field];
    if (!Number.isSafeInteger(v) || v < least) {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `deviceBinding.${field} must be an integer ≥ ${least}, got ${String(v)}`,
        { field: `deviceBinding.${field}` },
      );
    }
  };
  check('maxDrift', 0);
  check('minMatch', MIN_MATCH_FLOOR);
  check('driftCooldownMs', 0);
  return policy;
}

/** How a device's factor digests compare with its binding's. */
export interface FactorMatch {
  /** Bound factors (n). */
  bound: number;
  /** How many must match: max(minMatch, n − maxDrift). */
  required: number;
  /** Bound factors presented with the same digest. */
  matched: number;
  /** Bound factors presented with another digest. */
  changed: string[];
  /** Bound factors not presented. */
  missing: string[];
  /** Presented factors the binding does not have. */
  added: string[];
  /** Matched factors that are IDENTIFYING_FACTORS (at least one is needed). */
  identifying: number;
  accepted: boolean;
}

/**
 * Compares digests by factor name: accepted when at least `required` bound factors, one of them
 * identifying, are presented unchanged. Only names, never digests, leave this function.
 */
export function matchFactors(
  bound: Record<string, string>,
  presented: Record<string, string>,
  policy: BindingPolicy,
): FactorMatch {
  const names = Object.keys(bound);
  const changed: string[] = [];
  const missing: string[] = [];
  for (const name of names) {
    // Own keys only: a factor named like an Object.prototype member is just a name.
    if (!Object.hasOwn(presented, name)) missing.push(name);
    else if (presented[name] !== bound[name]) changed.push(name);
  }
  const added = Object.keys(presented).filter((name) => !Object.hasOwn(bound, name));
  const matched = names.length - changed.length - missing.length;
  const required = Math.max(policy.minMatch, names.length - policy.maxDrift);
  const identifying = names.filter(
    (n) => IDENTIFYING_FACTORS.includes(n) && !changed.includes(n) && !missing.includes(n),
  ).length;
  return {
    bound: names.length,
    required,
    matched,
    changed,
    missing,
    added,
    identifying,
    accepted: required <= names.length && matched >= required && identifying > 0,
  };
}

/** Whether two digest sets are the same (same names, same digests). */
export function sameFactors(a: Record<string, string>, b: Record<string, string>): boolean {
  const names = Object.keys(a);
  return (
    names.length === Object.keys(b).length &&
    names.every((n) => Object.hasOwn(b, n) && a[n] === b[n])
  );
}
