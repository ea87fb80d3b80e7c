// The configuration loader's public API: gkube.yaml's schema, types and defaults, the loader, and durations.

/** Loads and validates the configuration; see load.ts for the precedence of its sources. */
export { loadConfig } from './load.js';
/** What loadConfig reads, what it returns, and the flags it accepts. */
export type { LoadConfigInput, LoadedConfig, ConfigFlag } from './load.js';
/** The digest of a configuration and the canonical JSON it is computed over. */
export { configDigest, canonicalJson } from './load.js';
/** The environment variables, flags, default file name and size limit the loader uses. */
export { configEnvVars, configFlags, defaultConfigFile, maxConfigFileBytes } from './load.js';
/** The gkube.yaml JSON Schema, its built-in defaults and the patterns it validates with. */
export { configSchema, defaults, patterns } from './schema.js';
/** The shape of a loaded configuration and its parts. */
export type { AppConfig, TagPolicy, StorageProvider, GlusterMode, ResourceQuantities, DeepReadonly } from './schema.js';
/** Go-style durations (plus d for days): parse to milliseconds, format back. */
export { parseDuration, formatDuration, isPositiveDuration } from './duration.js';
/** Options of parseDuration. */
export type { DurationOptions } from './duration.js';
