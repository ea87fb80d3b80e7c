// Image references and the registry lookup the emulator's kubelet does instead of a real pull.
//
// The kubelet has no image store: "pulling" an image means asking the configured registry
// (ctx.registryUrl) whether the manifest exists, through the distribution HTTP API, and reading
// its config blob (Entrypoint/Cmd/Env/WorkingDir), which the container then runs with on the host's
// filesystem. Messages follow containerd 1.7 as Kubernetes 1.31 reports them.
//
// Choices (documented for the tests that rely on them):
// - A first path component that looks like a host (contains '.' or ':', or is 'localhost') is
//   stripped: every image is looked up in ctx.registryUrl whatever host it names.
// - The repository path is kept as written after the host: `nginx` is looked up as repository
//   `nginx`, not Docker Hub's `library/nginx` (the test registry holds what tests push).
// - A reference without tag or digest means tag `latest`. Messages name the image as written,
//   with `:latest` added when it had no tag (containerd would also prefix `docker.io/library/`
//   to host-less names; the emulator does not, since it never talks to Docker Hub).

/** Media types the kubelet accepts for a manifest, as containerd sends them. */
export const manifestAccept = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** A parsed image reference. */
export interface ImageReference {
  /** As written in the pod spec. */
  image: string;
  /** The registry host written in the reference, if any (ignored for the lookup). */
  host?: string;
  /** Repository path inside the registry: `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
  /** What goes after /manifests/: the digest when there is one, else the tag (default `latest`). */
  reference: string;
  /** The name messages and status use: the image with `:latest` added when it had neither tag nor digest. */
  display: string;
}

/** What the image config says about how to run the image. */
export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
}

/** An image the registry holds. */
export interface PulledImage {
  ref: ImageReference;
  /** Manifest digest (Docker-Content-Digest). */
  digest: string;
  /** `repo@sha256:…` as containerStatuses[].imageID shows it. */
  imageID: string;
  /** Sum of the config and layer sizes, as the Pulled event reports it. */
  size: number;
  config: ImageConfig;
}

/** Why an image could not be pulled: `reason` is the waiting reason the kubelet reports. */
export class ImagePullError extends Error {
  constructor(
    readonly reason: 'ErrImagePull' | 'InvalidImageName',
    message: string,
  ) {
    super(message);
  }
}

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/** Parses `[host[:port]/]path[:tag][@digest]`; throws ImagePullError(InvalidImageName) as the kubelet would. */
export function parseImageReference(image: string): ImageReference {
  const invalid = (detail: string): ImagePullError =>
    new ImagePullError('InvalidImageName', `Failed to apply default image tag "${image}": couldn't parse image name "${image}": ${detail}`);
  if (!image || image.trim() !== image) throw invalid('invalid reference format');
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) throw invalid('invalid reference format');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw invalid('invalid reference format');
  }
  const parts = rest.split('/');
  let host: string | undefined;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) host = parts.shift();
  const repository = parts.join('/');
  if (!repository) throw invalid('invalid reference format');
  for (const p of parts) {
    if (!pathComponent.test(p)) {
      throw invalid(p.toLowerCase() !== p ? `invalid reference format: repository name (${repository}) must be lowercase` : 'invalid reference format');
    }
  }
  const display = tag || digest ? image : `${image}:latest`;
  return { image, ...(host ? { host } : {}), repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}), reference: digest ?? tag ?? 'latest', display };
}

interface Descriptor {
  mediaType?: string;
  size?: number;
  digest?: string;
  platform?: { os?: string; architecture?: string };
}

/**
 * Looks `image` up in the registry at `registryUrl` (HEAD then GET of the manifest, GET of the config
 * blob). Throws ImagePullError with containerd's wording when the registry lacks it, cannot be reached,
 * or none is configured.
 */
export async function pullImage(registryUrl: string | undefined, image: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PulledImage> {
  const ref = parseImageReference(image);
  const name = ref.display;
  const prefix = `failed to pull and unpack image "${name}": failed to resolve reference "${name}"`;
  const notFound = (extra = ''): ImagePullError => new ImagePullError('ErrImagePull', `rpc error: code = NotFound desc = ${prefix}: ${name}: not found${extra}`);
  if (!registryUrl) throw notFound(' (the Kubernetes emulator has no image registry configured: set registryUrl)');
  const base = registryUrl.replace(/\/+$/, '');
  const manifestUrl = `${base}/v2/${ref.repository}/manifests/${ref.reference}`;
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10_000), ...(options.signal ? [options.signal] : [])]);
  const request = async (method: 'HEAD' | 'GET', url: string, accept?: string): Promise<Response> => {
    try {
      return await fetch(url, { method, headers: accept ? { accept } : {}, signal });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code === 'ECONNREFUSED' ? `dial tcp ${new URL(url).host}: connect: connection refused` : (cause?.message ?? (err as Error).message);
      const verb = method === 'HEAD' ? 'Head' : 'Get';
      throw new ImagePullError('ErrImagePull', `rpc error: code = Unknown desc = ${prefix}: failed to do request: ${verb} "${url}": ${detail}`);
    }
  };
  const head = await request('HEAD', manifestUrl, manifestAccept);
  if (head.status === 404) throw notFound();
  if (head.status === 401 || head.status === 403) {
    throw new ImagePullError(
      'ErrImagePull',
      `rpc error: code = Unknown desc = ${prefix}: pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`,
    );
  }
  if (head.status !== 200) throw new ImagePullError('ErrImagePull', `rpc error: code = Unknown desc = ${prefix}: unexpected status from HEAD request to ${manifestUrl}: ${head.status} ${head.statusText}`);
  let digest = head.headers.get('docker-content-digest') ?? ref.digest ?? '';

  // The manifest (and, for an index, the linux/amd64 or first entry) gives the size and the config blob.
  let manifest = await getJson(await request('GET', manifestUrl, manifestAccept));
  if (!digest) digest = '';
  const entries = manifest['manifests'] as Descriptor[] | undefined;
  if (Array.isArray(entries) && entries.length > 0) {
    const chosen = entries.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64') ?? entries[0]!;
    manifest = await getJson(await request('GET', `${base}/v2/${ref.repository}/manifests/${chosen.digest}`, manifestAccept));
  }
  const configDesc = manifest['config'] as Descriptor | undefined;
  const layers = (manifest['layers'] as Descriptor[] | undefined) ?? [];
  const size = (configDesc?.size ?? 0) + layers.reduce((sum, l) => sum + (l.size ?? 0), 0);
  let config: ImageConfig = {};
  if (configDesc?.digest) {
    const blob = await request('GET', `${base}/v2/${ref.repository}/blobs/${configDesc.digest}`);
    if (blob.status === 200) {
      const body = (await getJson(blob))['config'] as Record<string, unknown> | undefined;
      config = {
        ...(Array.isArray(body?.['Entrypoint']) ? { entrypoint: body!['Entrypoint'] as string[] } : {}),
        ...(Array.isArray(body?.['Cmd']) ? { cmd: body!['Cmd'] as string[] } : {}),
        ...(Array.isArray(body?.['Env']) ? { env: body!['Env'] as string[] } : {}),
        ...(typeof body?.['WorkingDir'] === 'string' && body['WorkingDir'] ? { workingDir: body['WorkingDir'] } : {}),
      };
    } else await blob.body?.cancel();
  }
  const repoName = ref.host ? `${ref.host}/${ref.repository}` : ref.repository;
  return { ref, digest, imageID: digest ? `${repoName}@${digest}` : '', size, config };
}

async function getJson(res: Response): Promise<Record<string, unknown>> {
  if (res.status !== 200) {
    await res.body?.cancel();
    return {};
  }
  try {
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** A duration as Go's time.Duration prints it (`1.5s`, `25.3ms`, `1m2s`), for kubelet messages. */
export function goDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const trim = (n: number, digits: number): string => n.toFixed(digits).replace(/\.?0+$/, '');
  if (ms < 1) return `${trim(ms * 1000, 3)}µs`;
  if (ms < 1000) return `${trim(ms, 6)}ms`;
  const totalSeconds = ms / 1000;
  if (totalSeconds < 60) return `${trim(totalSeconds, 9)}s`;
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds - hours * 3600 - minutes * 60;
  return `${hours ? `${hours}h` : ''}${minutes}m${trim(seconds, 9)}s`;
}
