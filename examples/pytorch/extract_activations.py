#!/usr/bin/env python3
"""Runs a torchvision model on a folder of images and saves the outputs of
named modules as one .safetensors file that `neurocorr score` reads.

    python extract_activations.py IMAGES OUT.safetensors [--model resnet18] [--layers a,b,...]
                                  [--weights none --seed 0] [--export-onnx MODEL.onnx]

The file holds one float32 tensor per layer, [M, ...] with M the number of
images, and these `__metadata__` entries (every value a string, as safetensors
requires):

    layers             JSON list of the layer names, in the order the forward pass finishes them
    depths             JSON list, per layer: its position, 0, 1, 2, ... (as `neurocorr extract` writes)
    layouts            JSON list, per layer: "nchw" for a rank-4 tensor, else null
    probe_fingerprint  "sha256:" + hex sha256 of the preprocessed probes (float32,
                       little-endian, [3, H, W] each, in probe order) followed by
                       the UTF-8 preprocessing string
    preprocessing      the preprocessing string (neurocorr ignores it)

See docs/PYTORCH.md.
"""

import argparse
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocessing_string(resize, crop):
    return (
        f"torchvision: RGB, Resize({resize}, bilinear, antialias), CenterCrop({crop}), ToTensor, "
        f"Normalize(mean={list(IMAGENET_MEAN)}, std={list(IMAGENET_STD)}), float32 NCHW"
    )


def probe_fingerprint(probes_digest, preprocessing):
    """`probes_digest`: a sha256 fed every preprocessed probe as float32 little-endian bytes, in order."""
    probes_digest.update(preprocessing.encode("utf-8"))
    return "sha256:" + probes_digest.hexdigest()


def safetensors_metadata(names, depths, ranks, fingerprint, preprocessing):
    """The `__metadata__` neurocorr reads (shared/formats/activations.ts); `ranks` counts the probe axis."""
    return {
        "layers": json.dumps(names),
        "depths": json.dumps(depths),
        "layouts": json.dumps(["nchw" if rank == 4 else None for rank in ranks]),
        "probe_fingerprint": fingerprint,
        "preprocessing": preprocessing,
    }


def write_safetensors(path, tensors, metadata):
    """Writes `tensors` (name -> contiguous float32 CPU tensor) as a .safetensors file, whole or not at all.

    The format is a little-endian u64 header length, a JSON header (padded with
    spaces to 8 bytes) and the raw tensors; written here so that the recipe needs
    no `safetensors` package (Debian has none).
    """
    header = {"__metadata__": metadata}
    offset = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as out:
            out.write(struct.pack("<Q", len(encoded)))
            out.write(encoded)
            for tensor in tensors.values():
                # A view of the tensor's memory: no copy of what may be gigabytes (float32 is little-endian here).
                out.write(memoryview(tensor.numpy().astype("<f4", copy=False)).cast("B"))
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def resnet_blocks(model):
    """The stem, every residual block, the global pool and the classifier of a torchvision ResNet."""
    stages = [getattr(model, f"layer{i}", None) for i in range(1, 5)]
    if any(stage is None for stage in stages):
        return None
    blocks = [f"layer{i}.{j}" for i, stage in enumerate(stages, 1) for j in range(len(stage))]
    return ["maxpool", *blocks, "avgpool", "fc"]


def image_files(folder):
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        sys.exit(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="folder of images, the probes, taken in sorted file-name order")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    parser.add_argument("--model", default="resnet18", help="a torchvision classification model (default: resnet18)")
    parser.add_argument("--weights", default="DEFAULT", help="its weights (DEFAULT, IMAGENET1K_V1, ...), or 'none' for an untrained model")
    parser.add_argument("--seed", type=int, help="seed torch before the model is built (random weights that repeat)")
    parser.add_argument("--layers", help="comma-separated module names (see --list-layers); default: a ResNet's block outputs")
    parser.add_argument("--list-layers", action="store_true", help="print the model's module names and exit")
    parser.add_argument("--resize", type=int, default=256, help="shorter side after resizing (default: 256)")
    parser.add_argument("--crop", type=int, default=224, help="center crop side (default: 224)")
    parser.add_argument("--batch", type=int, default=32, help="images per forward pass (default: 32)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--fingerprint", help="a probe fingerprint to store instead of the computed one")
    parser.add_argument("--export-onnx", type=Path, help="also export the model, with the same weights, to this .onnx file (opset 13, open batch axis)")
    args = parser.parse_args()

    # torch is imported here, not at the top, so that the helpers above load without it (test/extract-onnx.test.ts).
    import torch
    import torchvision
    from PIL import Image
    from torchvision import transforms

    if args.out.resolve() == args.images.resolve() or (args.export_onnx and args.export_onnx.resolve() == args.out.resolve()):
        sys.exit(f"{args.out}: the output must not be the probe folder or the ONNX file: pick another path")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    weights = None if args.weights.lower() == "none" else args.weights
    model = torchvision.models.get_model(args.model, weights=weights).eval()
    modules = dict(model.named_modules())
    if args.list_layers:
        print("\n".join(name for name in modules if name))
        return
    names = args.layers.split(",") if args.layers else resnet_blocks(model)
    if names is None:
        sys.exit(f"{args.model} is not a ResNet: pick its layers with --layers (see --list-layers)")
    unknown = [name for name in names if name not in modules]
    if unknown:
        sys.exit(f"{args.model} has no module {', '.join(unknown)} (see --list-layers)")

    if args.export_onnx:
        # Before any hook is registered, so the exported graph is the plain model.
        torch.onnx.export(
            model,
            torch.zeros(1, 3, args.crop, args.crop),
            str(args.export_onnx),
            input_names=["input"],
            dynamic_axes={"input": {0: "N"}},
            opset_version=13,
        )
        print(f"{args.export_onnx}: the model as ONNX", file=sys.stderr)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    preprocess = transforms.Compose(
        [
            transforms.Resize(args.resize, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
            transforms.CenterCrop(args.crop),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    preprocessing = preprocessing_string(args.resize, args.crop)

    def load(path):
        with Image.open(path) as image:
            return preprocess(image.convert("RGB"))

    # Forward hooks on the selected modules; their order is the order the forward pass finishes them.
    outputs = {name: [] for name in names}
    state = {"order": [], "seen": set()}

    def keep(name):
        def hook(_module, _inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            if name in state["seen"]:
                sys.exit(f"module {name} runs more than once per forward pass: pick another")
            state["seen"].add(name)
            if name not in state["order"]:
                state["order"].append(name)
            outputs[name].append(output.detach().float().cpu())

        return hook

    for name in names:
        modules[name].register_forward_hook(keep(name))

    files = image_files(args.images)
    probes_digest = hashlib.sha256()
    with torch.no_grad():
        for start in range(0, len(files), args.batch):
            batch = torch.stack([load(f) for f in files[start : start + args.batch]])
            probes_digest.update(batch.contiguous().numpy().astype("<f4").tobytes())
            state["seen"] = set()
            model(batch.to(device))
            print(f"{min(start + args.batch, len(files))}/{len(files)} images", file=sys.stderr)

    ordered = state["order"]
    if len(ordered) < len(names):
        sys.exit(f"module {', '.join(n for n in names if n not in ordered)} never runs in a forward pass: pick another")
    tensors = {name: torch.cat(outputs[name]).contiguous() for name in ordered}
    fingerprint = args.fingerprint or probe_fingerprint(probes_digest, preprocessing)
    # A layer's depth is its position, as neurocorr extract gives it (docs/PYTORCH.md).
    depths = list(range(len(ordered)))
    metadata = safetensors_metadata(ordered, depths, [tensors[name].dim() for name in ordered], fingerprint, preprocessing)
    write_safetensors(args.out, tensors, metadata)
    print(f"{args.out}: {len(files)} probes, layers {', '.join(ordered)}; probe fingerprint {fingerprint}", file=sys.stderr)


if __name__ == "__main__":
    main()
