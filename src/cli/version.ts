// Filled in by the bundler from package.json; tests that run the sources see the fallback.
declare const __GKUBE_VERSION__: string | undefined;

/** gkube's version, as `gkube --version` prints it. */
export const version: string = typeof __GKUBE_VERSION__ === 'string' ? __GKUBE_VERSION__ : '0.0.0-dev';
