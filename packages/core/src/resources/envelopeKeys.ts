import { deriveEnvelopeKey } from '@sluice/protocol';

/**
 * The envelope key depends on (email, password, hardware) only, not on the resource: derived
 * (scrypt) once per batch, handed out as copies that each pull zeroes, wiped when the batch ends.
 */
export function envelopeKeys(password: string, hardware: string) {
  const keys = new Map<string, Promise<Buffer>>();
  return {
    async copy(email: string): Promise<Buffer> {
      let key = keys.get(email);
      if (key === undefined) {
        key = deriveEnvelopeKey(email, password, hardware);
        keys.set(email, key);
        key.catch(() => keys.delete(email));
      }
      return Buffer.from(await key);
    },
    async wipe(): Promise<void> {
      for (const key of keys.values()) await key.then((k) => k.fill(0)).catch(() => {});
    },
  };
}
