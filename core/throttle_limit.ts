/**
 * How many hosts `remote invoke` works on at once: the one declaration of the range and default that
 * `--throttle-limit` and the config file's `throttle_limit` both accept.
 *
 * @module
 */

/** The range of the throttle limit and its default (Invoke-Command's 32). */
export const THROTTLE_LIMIT = { min: 1, max: 10_000, default: 32 } as const;
