/** The closed sets of values some options take. */
export const KERNEL_CHOICES = ['auto', 'native', 'tfjs', 'reference'] as const;
export const NATIVE_ISAS = ['auto', 'avx512', 'avx2', 'scalar'] as const;
export const TFJS_BACKENDS = ['gpu', 'node', 'wasm', 'cpu'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const PREPROCESS = ['caffe', 'torch', 'tf', 'unit', 'none'] as const;
export const LAYOUT_CHOICES = ['nchw', 'nhwc'] as const;

export const GiB = 1024 ** 3;
/** The longest duration any option takes where a day is the sane bound. */
export const DAY = 86_400;
export const UINT32 = 2 ** 32 - 1;
