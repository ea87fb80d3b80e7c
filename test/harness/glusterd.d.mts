/** Starts glusterd if it is installed and not answering; returns its pid when this call started it. */
export function ensureGlusterd(): Promise<number | undefined>;
/** Stops a glusterd that ensureGlusterd started. */
export function stopGlusterd(pid: number): Promise<void>;
