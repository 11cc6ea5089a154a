"""Train the MNIST classifier behind :mod:`lessons_lib.mnist.quality` and save it (the shipped
``checkpoints/mnist_classifier.pt`` is made by this command with its defaults).

    python -m lessons_lib.mnist.train_classifier [--n-steps 2000] [--data-dir DIR] [--out PATH]

Trains ``MNISTClassifier`` with seed 0 on ``mnist_train_heldout().train`` (the official
training split when it is on disk, else the 8,000 test images that
:func:`lessons_lib.mnist.data.heldout_indices` does not hold out; the output says which), with
random shifts of up to 2 pixels, by ``lessons_lib.training.train``. Reports the accuracy on the
2,000 held-out images (never trained on) and saves the state_dict (≈ 0.4 MB).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..training import train
from ..utils import seed_everything
from .data import mnist_train_heldout
from .quality import CLASSIFIER_CHECKPOINT, MNISTClassifier, class_histogram, classifier_outputs

SEED = 0
MAX_SHIFT = 2


def pack(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Images and labels in one (N, 785) tensor, since ``train`` draws batches from one tensor."""
    return torch.cat([images.reshape(len(images), -1), labels[:, None].to(images.dtype)], dim=1)


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Shift each image by (dy, dx), each uniform in {−max_shift, …, max_shift}, filling with 0."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    d = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator, device=generator.device).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + d[0][:, None])[:, :, None]  # (B, H, 1)
    cols = (torch.arange(w, device=x.device)[None, :] + d[1][:, None])[:, None, :]  # (B, 1, W)
    return padded[torch.arange(b, device=x.device)[:, None, None], 0, rows, cols][:, None]


def loss_fn(model, batch, generator):
    x = batch[:, :-1].reshape(-1, 1, 28, 28)
    y = batch[:, -1].long()
    return F.cross_entropy(model(random_shift(x, generator)), y)


def accuracy(model, images, labels) -> float:
    _, logits = classifier_outputs(images, model, features=False)
    return float((logits.argmax(1) == labels).double().mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", type=Path, default=CLASSIFIER_CHECKPOINT)
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: $LESSONS_LIB_MNIST_DIR)")
    args = parser.parse_args(argv)

    split = mnist_train_heldout(data_dir=args.data_dir)
    print(f"data: {split.source}")
    seed_everything(SEED)
    model = MNISTClassifier()
    start = time.perf_counter()
    result = train(model, loss_fn, pack(split.train, split.train_labels), n_steps=args.n_steps,
                   batch_size=args.batch_size, lr=args.lr, seed=SEED, desc="classifier")
    seconds = time.perf_counter() - start
    model = result.model.eval()

    train_acc = accuracy(model, split.train, split.train_labels)
    held_acc = accuracy(model, split.heldout, split.heldout_labels)
    hist = class_histogram(split.heldout, model)
    print(f"{args.n_steps} steps of {args.batch_size} in {seconds:.0f} s on {torch.get_num_threads()} threads")
    print(f"accuracy: train {train_acc:.4f}, held-out {held_acc:.4f} ({len(split.heldout)} images)")
    print(f"held-out class counts (predicted): {hist.counts.tolist()}, TV to uniform {hist.tv_to_uniform:.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
