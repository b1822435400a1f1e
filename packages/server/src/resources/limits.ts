const MiB = 1024 * 1024;

/** Largest small part accepted (the split rule keeps it far below this in practice). */
export const SMALL_PART_LIMIT = 16 * MiB;
/** Default largest big part the embedded store accepts (`ServerOptions.bigPartLimit`). */
export const DEFAULT_BIG_PART_LIMIT = 64 * 1024 * MiB;
/** Largest text field of an upload: the manifest of a 64 GiB part in 8 MiB chunks is ~0.6 MB. */
export const FIELD_LIMIT = 4 * MiB;
