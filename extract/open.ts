/**
 * Opens a model file as a runner, by format: a tfjs model.json (a folder
 * holding one will do) goes to the LayersModel or GraphModel runner, an
 * .onnx file to the ONNX runner. Runners are imported when needed, so the
 * library loads none of tfjs or onnxruntime until a model is opened.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../shared/errors.js';
import type { ModelRunner, OpenRunner, RunnerOptions } from './runner.js';
import { checkModelShapes } from './shapes.js';

export interface OpenedModel {
  readonly runner: ModelRunner;
  /** The model file (model.json or .onnx). */
  readonly path: string;
  /** Every file the model is read from (model.json, then its weight files), for its checksum. */
  readonly files: readonly string[];
}

const MODEL_FIX = 'pass a TensorFlow.js model.json (or the folder holding it) or an .onnx file';

// A specifier in a variable: the ONNX runner is an optional part, built from its own module.
const ONNX_RUNNER = './onnx-runner.js';

const missingModule = (err: unknown): boolean => (err as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND';

async function openOnnx(path: string, options: RunnerOptions): Promise<ModelRunner> {
  let module: unknown;
  try {
    module = await import(ONNX_RUNNER);
  } catch (err) {
    if (!missingModule(err)) throw err;
    const problem = /onnxruntime/.test(String((err as Error).message))
      ? 'ONNX models run on the optional package onnxruntime-node, which is not installed'
      : 'this build of neurocorr has no ONNX runner';
    throw new InputError('E_INPUT_FORMAT', path, problem, 'npm install onnxruntime-node (or convert the model to TensorFlow.js)', { cause: err });
  }
  const open = (module as { openOnnxRunner?: OpenRunner }).openOnnxRunner;
  if (typeof open !== 'function') throw new InputError('E_INPUT_FORMAT', path, 'the ONNX runner module exports no openOnnxRunner', 'reinstall neurocorr');
  return open(path, options);
}

/** Opens `path` as a runner; a missing, unreadable or unsupported model is an InputError naming the file. */
export async function openModel(path: string, log?: (line: string) => void, options: RunnerOptions = {}): Promise<OpenedModel> {
  let file = path;
  try {
    if (statSync(path).isDirectory()) {
      file = join(path, 'model.json');
      if (!existsSync(file)) throw new InputError('E_INPUT_MISSING', path, 'folder holds no model.json', MODEL_FIX);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError('E_INPUT_MISSING', path, 'no such file or directory', MODEL_FIX, { cause: err });
  }
  if (file.toLowerCase().endsWith('.onnx')) return { runner: await checked(file, await openOnnx(file, options)), path: file, files: [file] };
  const { readModelJson } = await import('./tfjs.js');
  const model = readModelJson(file);
  const runner =
    model.format === 'layers-model'
      ? await (await import('./tfjs-layers.js')).openLayersRunner(model, log)
      : await (await import('./tfjs-graph.js')).openGraphRunner(model, log);
  return { runner: await checked(file, runner), path: file, files: [file, ...model.weights] };
}

/** `runner`, once the shapes its model declares are within bounds (shapes.ts); else it is disposed and refused. */
async function checked(file: string, runner: ModelRunner): Promise<ModelRunner> {
  try {
    checkModelShapes(file, runner.input, runner.layers);
    return runner;
  } catch (err) {
    await runner.dispose();
    throw err;
  }
}
