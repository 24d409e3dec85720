/**
 * Stem cells: node runtime containers started before their function is known, so that a
 * function's first instance on this node does not wait for Node.js to boot (docs/decisions.md,
 * "Node cold starts: stem cells"). Each is an ordinary container of the stem image (the node
 * runtime image), confined like every instance: all seven namespaces, no capabilities,
 * no_new_privs, the seccomp profile, a read-only root, a cgroup of its own, and a uid range
 * reserved for it that no function has. Its runtime has booted (`SKIFF_STEM=1`) and waits on
 * fd 3; it has run no function code.
 *
 * A function that has no uid range on this node yet, whose image is the stem image plus its
 * own /function, adopts one: the range becomes the function's own for good; the cgroup gets
 * the function's limits; skiff-stem mounts the function image's /function read-only, sets the
 * host name and the size of /tmp; the runtime gets the function's environment and working
 * directory, loads the function and says `ready`. A stem cell serves one function instance and
 * dies with it; a new one is started for the next function once that instance is ready.
 *
 * A function that has a range already (it ran here before) can only adopt a stem cell in that
 * range: for each of the `perFunction` functions that started an instance here most recently
 * (and fit), one such stem cell is kept, in the function's range and under its cgroup, so its
 * next instance (a new version, one more for a burst, the first after it scaled to zero) does
 * not boot Node.js either. Anything that does not fit takes the usual start, in a container made
 * for it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, type Invocation } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import type { ImageConfig, ImageStore } from '@skiff/image';
import { processEnv, runtimeSpec } from '../bundle.js';
import { CGROUP_PARENT } from '../cgroups.js';
import type { ImageCache, PreparedImage } from '../images.js';
import { StreamInstance, type ContainerInit } from '../pool/instance.js';
import type { UidRanges } from '../uids.js';
import { stemMisfit, type LayerTop } from './fit.js';
import type { StemHelper } from './helper.js';
import { applyLimits, type Resources } from './limits.js';

/** The cgroup parent of stem cells (/skiff/@stem/<instance>); no function can be named so. */
export const STEM_CGROUP = '@stem';
/** The limits a stem cell waits with, until its function's replace them. */
const STEM_SETTINGS = { ...DEFAULT_SETTINGS };
/**
 * How long after an adopted instance is ready its replacement starts: Node.js boots on a CPU
 * for ~100 ms, which the function's first call should not compete with.
 */
const REFILL_DELAY_MS = 100;
/** After a stem cell failed to start, the next try waits this long (no restart loop). */
const RETRY_MS = 5000;
/** How often the stem image's ref is looked up again, to follow a rebuilt runtime image. */
const RESOLVE_EVERY_MS = 10_000;
const MIB = 1024 * 1024;

export interface StemPoolOptions {
  /** Stem cells kept waiting for functions new to the node. */
  target: number;
  /** Functions (the most recently started that fit) for which one stem cell in their own range is kept. */
  perFunction: number;
  /** The stem image, e.g. node-runtime:latest, resolved in the store. */
  imageRef: string;
  runtime: string;
  bundlesDir: string;
  maxBodyBytes: number;
  /** Longest log line kept of an instance's stdout and stderr. */
  maxLineBytes: number;
  seccomp: object;
  store: ImageStore;
  images: Pick<ImageCache, 'acquire' | 'layerTop'>;
  uids: UidRanges;
  helper: StemHelper;
  log: Logger;
  /** Called when the count of waiting or starting stem cells changes (for the heartbeat). */
  onChange?: () => void;
}

interface Stem {
  inst: StreamInstance;
  slot: number;
  /** The function whose range it runs in; undefined for a reserved range no function has. */
  fn: string | undefined;
  digest: string;
  cgroupsPath: string;
  state: 'starting' | 'waiting';
  init?: ContainerInit;
}

/** What the function's own container would be: from its runtime spec (bundle.ts). */
export interface Adopter {
  inv: Invocation;
  /** `generation(inv.fn)` when the instance began to start: a function deleted since keeps nothing. */
  generation: number;
  image: PreparedImage;
  /** Builds the function's runtime spec for a given first host uid (its own range's). */
  spec: (hostId: number) => { process: { env: string[]; cwd: string }; linux: { resources: Resources } };
  log: Logger;
}

export class StemPool {
  private readonly stems = new Set<Stem>();
  private stemImage: { digest: string; config: ImageConfig; env: string[]; resolvedAt: number } | undefined;
  private filling = false;
  private closed = false;
  private retryAt = 0;
  private refillTimer: NodeJS.Timeout | undefined;
  /** Per function image digest: its layers above the stem image's, as unpacked. */
  private readonly tops = new Map<string, LayerTop[] | undefined>();
  /** Functions that keep a stem cell in their own range, least recently started first. */
  private readonly kept = new Map<string, true>();
  /** Per function, how often it was deleted (forget): what began before is not kept. */
  private readonly generations = new Map<string, number>();

  constructor(private readonly o: StemPoolOptions) {}

  get counts(): { waiting: number; starting: number; target: number } {
    let waiting = 0;
    for (const s of this.stems) if (s.state === 'waiting') waiting++;
    return { waiting, starting: this.stems.size - waiting, target: this.o.target + this.kept.size };
  }

  /** The next stem cell to start: a reserved range first, then a kept function without one. */
  private next(): { fn: string | undefined } | undefined {
    let generic = 0;
    const covered = new Set<string>();
    for (const s of this.stems) {
      if (s.fn === undefined) generic++;
      else covered.add(s.fn);
    }
    if (generic < this.o.target) return { fn: undefined };
    for (const fn of [...this.kept.keys()].reverse()) if (!covered.has(fn) && this.o.uids.slotOf(fn) !== undefined) return { fn };
    return undefined;
  }

  /**
   * Notes that a function started an instance here (from a stem cell or not): if it fits the
   * stem image, one stem cell in its range is kept for its next instance, for the `perFunction`
   * functions that did so most recently.
   */
  async started(a: Adopter): Promise<void> {
    const fn = a.inv.fn;
    const gone = () => this.closed || a.generation !== this.generation(fn);
    if (gone() || this.o.perFunction === 0 || a.inv.mode !== 'stream') return;
    const stemImage = this.stemImage;
    const slot = this.o.uids.slotOf(fn);
    if (!stemImage || slot === undefined) return;
    const tops = await this.layerTops(a.image, stemImage.config);
    // Deleted while it started (or meanwhile): no stem cell for it, in its range, under its cgroup.
    if (gone()) return;
    const misfit = tops ? stemMisfit(stemImage.config, stemImage.env, a.image.config, a.spec(this.o.uids.hostIdOf(slot)).process.env, tops) : 'its layers are not all unpacked';
    if (misfit) return;
    this.kept.delete(fn);
    this.kept.set(fn, true);
    for (const old of this.kept.keys()) {
      if (this.kept.size <= this.o.perFunction) break;
      this.unkeep(old);
    }
    this.refillSoon(REFILL_DELAY_MS);
  }

  /** See Adopter.generation. */
  generation(fn: string): number {
    return this.generations.get(fn) ?? 0;
  }

  /** The function was deleted: its stem cell goes, and nothing begun for it before is kept. */
  forget(fn: string): void {
    this.generations.set(fn, this.generation(fn) + 1);
    this.unkeep(fn);
  }

  /** No stem cell kept for the function any more (deleted, or fell out of the kept ones). */
  private unkeep(fn: string): void {
    this.kept.delete(fn);
    for (const s of this.stems) if (s.fn === fn) void s.inst.stop(2000);
  }

  /** Starts stem cells up to the target, one after the other. Safe to call at any time. */
  fill(): void {
    if (this.filling || this.closed || Date.now() < this.retryAt) return;
    const next = this.next();
    if (!next) {
      if (Date.now() - (this.stemImage?.resolvedAt ?? 0) > RESOLVE_EVERY_MS) void this.resolveImage().catch(() => undefined);
      return;
    }
    this.filling = true;
    void this.startOne(next.fn)
      .then(
        (started) => {
          this.filling = false;
          if (started) this.fill();
        },
        (err: unknown) => {
          this.filling = false;
          this.retryAt = Date.now() + RETRY_MS;
          this.o.log.warn({ err }, 'a stem cell failed to start; trying again later');
        },
      );
  }

  /**
   * The function's instance from a waiting stem cell, or undefined when none fits (the caller
   * then starts one for it). Rejects when an adoption began and failed: the stem cell is gone.
   */
  async adopt(a: Adopter): Promise<StreamInstance | undefined> {
    const fn = a.inv.fn;
    if (this.closed || a.inv.mode !== 'stream') return undefined;
    const stemImage = this.stemImage;
    // A function with a range takes only a stem cell in it; one without, one in a reserved range.
    const candidate = () => {
      const owner = this.o.uids.slotOf(fn) === undefined ? undefined : fn;
      return [...this.stems].find((s) => s.state === 'waiting' && s.fn === owner && s.digest === stemImage?.digest);
    };
    if (!stemImage || !candidate()) return undefined;
    const tops = await this.layerTops(a.image, stemImage.config);
    // Nothing awaited from here until the stem cell is taken and its range the function's.
    const stem = candidate();
    if (!stem || !tops) return undefined;
    const probe = a.spec(this.o.uids.hostIdOf(stem.slot));
    const misfit = stemMisfit(stemImage.config, stemImage.env, a.image.config, probe.process.env, tops);
    if (misfit) {
      a.log.debug({ fn, why: misfit }, 'no stem cell: the function does not fit one');
      return undefined;
    }
    this.stems.delete(stem);
    if (stem.fn === undefined) this.o.uids.assign(fn, stem.slot);
    this.o.onChange?.();
    // Where an adoption's time goes, in the debug log (docs/decisions.md).
    const t = [performance.now()];
    try {
      const spec = a.spec(this.o.uids.hostIdFor(fn));
      const r = spec.linux.resources;
      applyLimits(stem.cgroupsPath, r);
      t.push(performance.now());
      await this.o.helper.adopt({ pid: stem.init!.pid, starttime: stem.init!.starttime, hostname: fn, tmpBytes: a.inv.settings.tmpMb * MIB, rootfs: a.image.rootfs });
      t.push(performance.now());
      stem.inst.adopt(spec.process.env, spec.process.cwd, a.log, { memoryBytes: r.memory.limit, pids: r.pids.limit });
    } catch (err) {
      stem.inst.kill();
      this.refillSoon(0);
      throw err;
    }
    const ms = (i: number) => Math.round((t[i]! - t[i - 1]!) * 1000) / 1000;
    void stem.inst.ready().then(
      () => {
        t.push(performance.now());
        a.log.debug({ fn, instance: stem.inst.id, limitsMs: ms(1), helperMs: ms(2), loadMs: ms(3) }, 'stem cell adopted');
        this.refillSoon(REFILL_DELAY_MS);
      },
      () => this.refillSoon(0),
    );
    return stem.inst;
  }

  /** Stops the waiting stem cells (each exits on its shutdown) and starts no more. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refillTimer);
    await Promise.allSettled([...this.stems].map((s) => s.inst.stop(2000)));
  }

  private refillSoon(ms: number): void {
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => this.fill(), ms);
  }

  private async resolveImage(): Promise<NonNullable<StemPool['stemImage']>> {
    const resolved = await this.o.store.resolve(this.o.imageRef);
    const env = processEnv(resolved.config, ['SKIFF_STEM=1']);
    if (this.stemImage?.digest !== resolved.digest) {
      if (this.stemImage) this.o.log.info({ image: resolved.digest, ref: this.o.imageRef }, 'stem image changed; replacing the waiting stem cells');
      // Stem cells of an older runtime image would fit only functions built on it: replace them.
      for (const s of this.stems) if (s.state === 'waiting' && s.digest !== resolved.digest) void s.inst.stop(2000);
    }
    this.stemImage = { digest: resolved.digest, config: resolved.config, env, resolvedAt: Date.now() };
    return this.stemImage;
  }

  /**
   * One stem cell, started and waiting: in a reserved range, or in `fn`'s own and under its
   * cgroup. False when there is no stem image to start one from.
   */
  private async startOne(fn: string | undefined): Promise<boolean> {
    const image = await this.resolveImage().catch((err: unknown) => {
      this.o.log.debug({ err, ref: this.o.imageRef }, 'no stem image; no stem cells');
      this.retryAt = Date.now() + RETRY_MS;
      return undefined;
    });
    // Closed, or the function no longer kept (deleted) meanwhile.
    const unwanted = () => this.closed || (fn !== undefined && !this.kept.has(fn));
    if (!image || unwanted()) return false;
    const owned = fn === undefined ? undefined : this.o.uids.slotOf(fn);
    if (fn !== undefined && owned === undefined) return false;
    const prepared = await this.o.images.acquire(image.digest);
    const id = randomBytes(8).toString('hex');
    const slot = owned ?? this.o.uids.reserve();
    const release = () => owned === undefined && this.o.uids.release(slot);
    const cgroupsPath = `/${CGROUP_PARENT}/${fn ?? STEM_CGROUP}/${id}`;
    let inst: StreamInstance;
    try {
      const spec = runtimeSpec({ rootfs: prepared.rootfs, image: prepared.config, fn: 'stem', settings: STEM_SETTINGS, env: ['SKIFF_STEM=1'], instanceId: id, hostId: this.o.uids.hostIdOf(slot), seccomp: this.o.seccomp }) as { linux: { cgroupsPath: string } };
      spec.linux.cgroupsPath = cgroupsPath;
      inst = await StreamInstance.launch({ runtime: this.o.runtime, bundleDir: join(this.o.bundlesDir, id), spec, maxBodyBytes: this.o.maxBodyBytes, maxLineBytes: this.o.maxLineBytes, log: this.o.log.child({ stem: id }), stem: true });
    } catch (err) {
      release();
      prepared.release();
      throw err;
    }
    const stem: Stem = { inst, slot, fn, digest: image.digest, cgroupsPath, state: 'starting' };
    this.stems.add(stem);
    this.o.onChange?.();
    void inst.exited.then(() => {
      prepared.release();
      // Adopted, its range is its function's now; otherwise nobody ever ran in it.
      if (this.stems.delete(stem)) {
        release();
        this.o.onChange?.();
        this.refillSoon(0);
      }
    });
    try {
      if (unwanted()) throw new Error('not wanted any more');
      await inst.waiting();
      stem.init = inst.containerInit();
    } catch (err) {
      inst.kill();
      if (unwanted()) return false;
      throw err;
    }
    stem.state = 'waiting';
    this.o.onChange?.();
    return true;
  }

  /** The function image's layers above the stem image's, or undefined when they are not all unpacked. */
  private async layerTops(image: PreparedImage, stem: ImageConfig): Promise<LayerTop[] | undefined> {
    const key = `${stem.rootfs.diff_ids.join(',')} ${image.digest}`;
    if (this.tops.has(key)) return this.tops.get(key);
    const extra = image.config.rootfs.diff_ids.slice(stem.rootfs.diff_ids.length);
    const tops: LayerTop[] = [];
    for (const d of extra) {
      const t = await this.o.images.layerTop(d);
      if (!t) return undefined;
      tops.push(t);
    }
    if (this.tops.size > 1000) this.tops.clear();
    this.tops.set(key, tops);
    return tops;
  }
}
