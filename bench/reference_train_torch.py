"""A PyTorch CutPaste training run to set beside ``launch.train`` on the same images.

What a typical PyTorch CutPaste port does, written out plainly: torchvision's ResNet-18 from
scratch, an MLP head of ``--head_layers`` Linear(512) -> BatchNorm -> ReLU layers, a Linear
classifier with PyTorch's default initialisation; SGD (momentum 0.9, weight decay 3e-5, lr 0.03)
on one cosine cycle; each source image resized, colour-jittered (0.1, 0.1, 0.1, 0.1) as a whole,
then three views (normal, CutPaste, CutPaste-Scar) made with PIL, each patch jittered by the same
ColorJitter before pasting. Scar sizes are pixels at every image size, as in cutpaste_tf and
the usual ports (``--scar_reference_size=256`` scales them with the image side / 256).

It logs the 3-way training accuracy per class over windows of ``--log_every`` steps, then fits a
Gaussian (Ledoit-Wolf) to the L2-normalised pooled features of the training images and reports
the image AUROC on ``<data_dir>/<category>/test/{good,<defect>}``: the layout ``launch.train``
reads. It is not part of the package and not a dependency; install it apart:

  python3 -m venv ~/ref-venv
  ~/ref-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 pillow numpy scikit-learn
  ~/ref-venv/bin/python bench/reference_train_torch.py --data_dir=data/elpv --category=mono \
      --size=128 --steps=600 --output=runs/torch_elpv_mono.json

It writes one JSON (the curve, the AUROC, the settings, the wall time) and prints its summary.
"""
import argparse
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from torchvision import transforms

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--data_dir", required=True)
p.add_argument("--category", required=True)
p.add_argument("--size", type=int, default=128)
p.add_argument("--steps", type=int, default=600)
p.add_argument("--images_per_step", type=int, default=32, help="3 views each: 96 per step")
p.add_argument("--head_layers", type=int, default=1)
p.add_argument("--scar_reference_size", type=int, default=0, help="0: scar sizes in pixels")
p.add_argument("--lr", type=float, default=0.03)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--log_every", type=int, default=25)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--output", required=True)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
random.seed(args.seed)

jitter = transforms.ColorJitter(0.1, 0.1, 0.1, 0.1)
to_tensor = transforms.Compose([transforms.ToTensor(),
                                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)


def load(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB").resize((args.size, args.size), Image.BILINEAR)


def box(size: int) -> tuple[int, int, int, int]:
    area = random.uniform(0.02, 0.15) * size * size
    ratio = math.exp(random.uniform(math.log(0.3), math.log(3.3)))
    w = min(size, max(1, int(round(math.sqrt(area * ratio)))))
    h = min(size, max(1, int(round(math.sqrt(area / ratio)))))
    return w, h, random.randint(0, size - w), random.randint(0, size - h)


def cutpaste(img: Image.Image) -> Image.Image:
    s = img.size[0]
    w, h, x, y = box(s)
    patch = jitter(img.crop((x, y, x + w, y + h)))
    out = img.copy()
    out.paste(patch, (random.randint(0, s - w), random.randint(0, s - h)))
    return out


def scar(img: Image.Image) -> Image.Image:
    s = img.size[0]
    scale = s / args.scar_reference_size if args.scar_reference_size else 1.0
    w = max(1, int(random.uniform(2, 16) * scale))
    h = max(1, int(random.uniform(10, 25) * scale))
    x, y = random.randint(0, s - w), random.randint(0, s - h)
    patch = jitter(img.crop((x, y, x + w, y + h))).convert("RGBA")
    patch = patch.rotate(random.uniform(-45, 45), expand=True)
    out = img.copy()
    out.paste(patch, (random.randint(0, s - patch.size[0]), random.randint(0, s - patch.size[1])),
              mask=patch.split()[-1])
    return out


def batch(train: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
    views, labels = [], []
    for img in random.choices(train, k=args.images_per_step):
        img = jitter(img)
        for label, view in enumerate((img, cutpaste(img), scar(img))):
            views.append(to_tensor(view))
            labels.append(label)
    return torch.stack(views), torch.tensor(labels)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18(num_classes=512)
        self.backbone.fc = torch.nn.Identity()
        layers = []
        for _ in range(args.head_layers):
            layers += [torch.nn.Linear(512, 512, bias=False), torch.nn.BatchNorm1d(512),
                       torch.nn.ReLU()]
        self.head = torch.nn.Sequential(*layers)
        self.classifier = torch.nn.Linear(512, 3)

    def forward(self, x):
        features = self.backbone(x)
        return features, self.classifier(self.head(features))


def features_of(net: Net, images: list[Image.Image]) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            x = torch.stack([to_tensor(im) for im in images[i:i + 64]])
            out.append(torch.nn.functional.normalize(net(x)[0], dim=1).numpy())
    return np.concatenate(out)


def main():
    root = Path(args.data_dir) / args.category
    train = [load(f) for f in images_in(root / "train" / "good")]
    test, labels = [], []
    for folder in sorted((root / "test").iterdir()):
        for f in images_in(folder):
            test.append(load(f))
            labels.append(int(folder.name != "good"))
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=3e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / args.steps)))
    loss_fn = torch.nn.CrossEntropyLoss()
    curve, correct, counts, losses = [], np.zeros(3), np.zeros(3), []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        net.train()
        x, y = batch(train)
        logits = net(x)[1]
        loss = loss_fn(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        hit = (logits.argmax(1) == y).numpy()
        for c in range(3):
            correct[c] += hit[y.numpy() == c].sum()
            counts[c] += (y.numpy() == c).sum()
        losses.append(loss.item())
        if step % args.log_every == 0:
            per_class = (correct / counts).round(4).tolist()
            curve.append({"step": step, "accuracy": round(correct.sum() / counts.sum(), 4),
                          "per_class": per_class, "loss": round(float(np.mean(losses)), 4),
                          "seconds": round(time.perf_counter() - start, 1)})
            print(json.dumps(curve[-1]), flush=True)
            correct[:], counts[:], losses = 0, 0, []
    train_seconds = time.perf_counter() - start
    gaussian = LedoitWolf().fit(features_of(net, train))
    scores = gaussian.mahalanobis(features_of(net, test))
    result = {"reference": "torch", "torch": torch.__version__, "settings": vars(args),
              "train_images": len(train), "test_images": len(test),
              "train_seconds": round(train_seconds, 1), "curve": curve,
              "image_auroc": round(100 * roc_auc_score(labels, scores), 2)}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.output)
    print(json.dumps({k: result[k] for k in ("image_auroc", "train_seconds")}))


if __name__ == "__main__":
    main()
