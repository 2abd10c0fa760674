#!/usr/bin/env python3
"""PyTorch side of `npm run bench:extract` (run with Debian's /usr/bin/python3: torch, torchvision, onnx).

  extract-peer.py prepare DIR [--probes M] [--size S]
      torchvision ResNet-50 with seeded random weights (torch.manual_seed(0), weights=None), exported
      to DIR/resnet50.onnx (opset 13, dynamic batch axis), and M seeded probes [M, 3, S, S] as
      DIR/probes-nchw-M.npy, and the same values as [M, S, S, 3] in DIR/probes-nhwc-M.npy (for the Keras model).
  extract-peer.py time DIR --probes M --threads T --batch B
      the same model on the same probes with torch.set_num_threads(T): forward passes at batch B with
      forward hooks keeping the block outputs (as examples/pytorch/extract_activations.py does); prints
      {"seconds": forward-pass time, "probes": M} as JSON; with --write FILE, then writes the kept
      activations as the recipe does (its write_safetensors), so that the whole process is a PyTorch
      user's run of examples/pytorch/extract_activations.py on these probes.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision


def model():
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).eval()


def blocks(net):
    stages = [getattr(net, f"layer{i}") for i in range(1, 5)]
    return ["maxpool", *[f"layer{i}.{j}" for i, stage in enumerate(stages, 1) for j in range(len(stage))], "avgpool", "fc"]


def prepare(out, m, size):
    out.mkdir(parents=True, exist_ok=True)
    net = model()
    generator = torch.Generator().manual_seed(1)
    probes = torch.randn(m, 3, size, size, generator=generator)
    np.save(out / f"probes-nchw-{m}.npy", probes.numpy().astype("<f4"))
    np.save(out / f"probes-nhwc-{m}.npy", np.ascontiguousarray(probes.permute(0, 2, 3, 1).numpy()).astype("<f4"))
    torch.onnx.export(
        net,
        probes[:1],
        str(out / "resnet50.onnx"),
        opset_version=13,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
    )
    print(json.dumps({"onnx": str(out / "resnet50.onnx"), "probes": m, "torch": torch.__version__, "torchvision": torchvision.__version__}))


def time_forward(out, m, threads, batch, write):
    torch.set_num_threads(threads)
    net = model()
    modules = dict(net.named_modules())
    kept = {name: [] for name in blocks(net)}
    for name in kept:
        modules[name].register_forward_hook(lambda _m, _i, output, name=name: kept[name].append(output.detach().float().cpu()))
    probes = torch.from_numpy(np.load(out / f"probes-nchw-{m}.npy"))
    with torch.no_grad():
        started = time.perf_counter()
        for start in range(0, len(probes), batch):
            net(probes[start : start + batch])
        seconds = time.perf_counter() - started
    if write is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "pytorch"))
        from extract_activations import write_safetensors

        write_safetensors(write, {name: torch.cat(kept[name]).contiguous() for name in kept}, {"layers": json.dumps(list(kept))})
    print(json.dumps({"seconds": seconds, "probes": len(probes), "layers": len(kept), "threads": torch.get_num_threads()}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["prepare", "time"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--probes", type=int, default=128)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--write", type=Path, help="time mode: also write the activations to this .safetensors file")
    args = parser.parse_args()
    if args.mode == "prepare":
        prepare(args.dir, args.probes, args.size)
    else:
        time_forward(args.dir, args.probes, args.threads, args.batch, args.write)


if __name__ == "__main__":
    sys.exit(main())
