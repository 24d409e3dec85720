import type { LayerEvent } from '@skiff/image';
import { meter, type Counter, type Histogram, type Meter } from '@skiff/telemetry';

/** Seconds, from a cached layer (milliseconds) to a large image on a slow disk (minutes). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export type ImageMode = 'overlay' | 'flat';

/**
 * OpenTelemetry instruments for making images ready on a worker. Names, units and attributes
 * are listed in docs/telemetry.md; keep the two in step.
 */
export class ImageMetrics {
  private readonly prepareDuration: Histogram;
  private readonly layerDuration: Histogram;
  private readonly layersUnpacked: Counter;
  private readonly layersCached: Counter;
  private readonly compressedRead: Counter;
  private readonly uncompressedRead: Counter;

  /** Uses the process's MeterProvider by default, so create it after startTelemetry. */
  constructor(m: Meter = meter('@skiff/worker')) {
    this.prepareDuration = m.createHistogram('skiff.image.prepare.duration', {
      unit: 's',
      description: "Time to make an image's root filesystem ready (unpack missing layers, then mount or flatten)",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.layerDuration = m.createHistogram('skiff.image.layer.unpack.duration', {
      unit: 's',
      description: 'Time to unpack one layer into the layer cache',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.layersUnpacked = m.createCounter('skiff.image.layer.unpacked', { unit: '{layer}', description: 'Layers unpacked' });
    this.layersCached = m.createCounter('skiff.image.layer.cached', { unit: '{layer}', description: 'Layers found already unpacked in the layer cache' });
    this.compressedRead = m.createCounter('skiff.image.layer.read.compressed', { unit: 'By', description: 'Layer blob bytes read from the store while unpacking' });
    this.uncompressedRead = m.createCounter('skiff.image.layer.read.uncompressed', { unit: 'By', description: 'Uncompressed tar bytes read while unpacking' });
  }

  /** A listener for the LayerEvents of one image's unpack. */
  layerListener(): (e: LayerEvent) => void {
    // layer-done does not repeat the blob size that layer-start carried.
    const compressed = new Map<string, number>();
    return (e) => {
      switch (e.type) {
        case 'layer-cached':
          this.layersCached.add(1);
          break;
        case 'layer-start':
          compressed.set(e.diffId, e.compressedSize);
          break;
        case 'layer-done':
          this.layersUnpacked.add(1);
          this.layerDuration.record(e.ms / 1000);
          this.uncompressedRead.add(e.bytes);
          this.compressedRead.add(compressed.get(e.diffId) ?? 0);
          break;
        case 'layer-progress':
          break;
      }
    };
  }

  /** A whole image unpacked in one go (flat mode without overlay-format layers): no per-layer timings. */
  imageUnpacked(layers: number, compressedBytes: number, uncompressedBytes: number): void {
    this.layersUnpacked.add(layers);
    this.compressedRead.add(compressedBytes);
    this.uncompressedRead.add(uncompressedBytes);
  }

  /** `cached`: no layer had to be unpacked for this preparation. */
  prepared(mode: ImageMode, cached: boolean, seconds: number): void {
    this.prepareDuration.record(seconds, { 'skiff.image.mode': mode, 'skiff.image.cached': cached });
  }
}
