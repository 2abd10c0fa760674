/**
 * Layer shapes of real architectures, for `neurocorr synth`: ResNet block
 * outputs (or every conv output), and MLPs. Shapes are per probe, [C, H, W]
 * or [N].
 */
import { UsageError } from '../shared/errors.js';

export interface ArchLayer {
  readonly name: string;
  readonly shape: readonly number[];
  /** ResNet stage (0 = stem), for a stage-wise depth map. */
  readonly stage: number;
}

interface ResNetSpec {
  readonly bottleneck: boolean;
  readonly blocks: readonly [number, number, number, number];
}

const RESNETS: Record<string, ResNetSpec> = {
  resnet18: { bottleneck: false, blocks: [2, 2, 2, 2] },
  resnet34: { bottleneck: false, blocks: [3, 4, 6, 3] },
  resnet50: { bottleneck: true, blocks: [3, 4, 6, 3] },
  resnet101: { bottleneck: true, blocks: [3, 4, 23, 3] },
  resnet152: { bottleneck: true, blocks: [3, 8, 36, 3] },
};

export const ARCHITECTURES = [...Object.keys(RESNETS), 'mlp:<sizes>'];

/** Output side of a conv with the given stride (padding keeps "same" size / stride). */
const down = (side: number, stride: number): number => Math.ceil(side / stride);

function resnet(spec: ResNetSpec, resolution: number, allConvs: boolean): ArchLayer[] {
  const layers: ArchLayer[] = [];
  const conv = (name: string, c: number, side: number, stage: number) => layers.push({ name, shape: [c, side, side], stage });
  let side = down(resolution, 2);
  conv('conv1', 64, side, 0);
  side = down(side, 2); // max pool
  const expansion = spec.bottleneck ? 4 : 1;
  spec.blocks.forEach((count, s) => {
    const width = 64 * 2 ** s;
    for (let b = 0; b < count; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      const prefix = `layer${s + 1}.${b}`;
      const out = down(side, stride);
      if (allConvs) {
        if (spec.bottleneck) {
          conv(`${prefix}.conv1`, width, side, s + 1);
          conv(`${prefix}.conv2`, width, out, s + 1);
          conv(`${prefix}.conv3`, width * expansion, out, s + 1);
        } else {
          conv(`${prefix}.conv1`, width, out, s + 1);
          conv(`${prefix}.conv2`, width, out, s + 1);
        }
        if (b === 0 && (stride !== 1 || spec.bottleneck)) conv(`${prefix}.downsample`, width * expansion, out, s + 1);
      }
      conv(`${prefix}`, width * expansion, out, s + 1);
      side = out;
    }
  });
  layers.push({ name: 'avgpool', shape: [64 * 8 * expansion], stage: 5 });
  layers.push({ name: 'fc', shape: [1000], stage: 5 });
  return layers;
}

/**
 * The layers of `arch` at `resolution`, with spatial sides multiplied by
 * `scale` (at least 1), so that tests can use the real structure at a
 * fraction of the size.
 */
export function architectureLayers(arch: string, resolution: number, scale: number, allConvs: boolean): ArchLayer[] {
  if (arch.startsWith('mlp:')) {
    const sizes = arch
      .slice(4)
      .split(',')
      .map((s) => Number(s.trim()));
    if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n > 0)) {
      throw new UsageError((o) => `${o('arch')} ${arch}: expected mlp:<sizes>, e.g. mlp:100,60,40`);
    }
    return sizes.map((n, i) => ({ name: `fc${i + 1}`, shape: [n], stage: i }));
  }
  const spec = RESNETS[arch];
  if (spec === undefined) throw new UsageError((o) => `${o('arch')} ${arch}: expected one of ${ARCHITECTURES.join(', ')}`);
  return resnet(spec, resolution, allConvs).map((l) =>
    l.shape.length === 3 ? { ...l, shape: [l.shape[0]!, Math.max(1, Math.round(l.shape[1]! * scale)), Math.max(1, Math.round(l.shape[2]! * scale))] } : l,
  );
}

export const neuronCount = (layers: readonly ArchLayer[]): number => layers.reduce((sum, l) => sum + l.shape.reduce((a, b) => a * b, 1), 0);
