export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Annotation naming a tag in index.json. */
export const REF_ANNOTATION = 'org.opencontainers.image.ref.name';

export function isIndexType(t: string | undefined): boolean {
  return t === MEDIA.ociIndex || t === MEDIA.dockerManifestList;
}

export function isManifestType(t: string | undefined): boolean {
  return t === MEDIA.ociManifest || t === MEDIA.dockerManifest;
}

/** How a layer blob is compressed; undefined means we cannot read it (zstd, foreign layers, ...). */
export function layerCompression(t: string): 'gzip' | 'none' | undefined {
  if (t === MEDIA.ociLayerGzip || t === MEDIA.dockerLayerGzip) return 'gzip';
  if (t === MEDIA.ociLayerTar) return 'none';
  return undefined;
}
