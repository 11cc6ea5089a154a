"""MNIST (28×28 grey digits), read from the original IDX files with numpy only.

* :func:`load_mnist` — one split as ``(images, labels)``: images float32 of shape (N, 1, 28, 28)
  scaled to [0, 1], labels int64 of shape (N,); N = 60,000 (``"train"``) or 10,000 (``"test"``);
* :func:`mnist_train_heldout` — training images plus a fixed held-out set (always the *last*
  ``n_heldout`` images of the test split, so quality measurements are comparable everywhere);
  it trains on the first test images when the training split is not available;
* :func:`mnist_search_path` — the folders a split is looked for in, in order: the ``data_dir``
  argument alone when given; else the folder named by the environment variable
  ``LESSONS_LIB_MNIST_DIR`` (when set), then the checkout's own ``data/mnist`` (the bundled
  test split), then the user cache ``$XDG_CACHE_HOME/lessons_lib/mnist`` (``~/.cache/...``
  when ``XDG_CACHE_HOME`` is not set). A split is read from the first folder that has both of
  its files;
* :func:`mnist_dir` — the folder downloads go to: ``data_dir``, else ``LESSONS_LIB_MNIST_DIR``,
  else the user cache.

The files keep their official names (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``), gzipped or decompressed (the same
name without ``.gz``). Every file is checked before it is parsed: its MD5 against the official
value, then its IDX header (magic number, dimensions, byte count). Any problem — a missing,
corrupt, truncated or foreign file, no network — raises :class:`MNISTError` with a message that
names the file and says what to do. Nothing is downloaded unless ``download=True`` is passed;
a download goes to a temporary file in the same folder and is renamed into place only once its
checksum is right. The repository ships the test split in ``data/mnist`` (10,000 images);
the training split (60,000) is downloaded on request.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np
import torch

from .._validate import require_count

__all__ = [
    "MNISTError",
    "MNISTSplit",
    "mnist_dir",
    "mnist_search_path",
    "BUNDLED_MNIST_DIR",
    "load_mnist",
    "mnist_train_heldout",
    "heldout_indices",
    "read_idx",
    "MIRRORS",
]


ENV_VAR = "LESSONS_LIB_MNIST_DIR"

# Official file names (without ".gz") of each split, and its number of images.
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_COUNTS = {"train": 60_000, "test": 10_000}
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049  # IDX: unsigned bytes, 3 dimensions / 1 dimension
_ROWS = _COLS = 28

# MD5 of every file as it lies on disk. The ".gz" values are the official ones (the same that
# torchvision checks); the raw values are the MD5 of the decompressed official test files. The
# decompressed training files have no MD5 here: they are checked by their header and exact size.
_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte": None,
    "train-labels-idx1-ubyte": None,
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Sizes in bytes of the official gzipped files (used only to say "truncated" in messages).
_GZ_SIZES = {
    "train-images-idx3-ubyte.gz": 9_912_422,
    "train-labels-idx1-ubyte.gz": 28_881,
    "t10k-images-idx3-ubyte.gz": 1_648_877,
    "t10k-labels-idx1-ubyte.gz": 4_542,
}
#: Where ``download=True`` fetches the ``.gz`` files from, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a mirror is given up
# The test split shipped with the course: data/mnist at the root of the checkout.
BUNDLED_MNIST_DIR = pathlib.Path(__file__).resolve().parents[2] / "data" / "mnist"
_BUNDLED_NOTE = (
    "The course's repository ships the test split only (10,000 images, in data/mnist); "
    "download the training split with load_mnist('train', download=True) or `make mnist-train`."
)


class MNISTError(RuntimeError):
    """MNIST files missing, corrupt, truncated or not downloadable; the message says which file
    and what to do about it."""


@dataclasses.dataclass
class MNISTSplit:
    """Training images and the fixed held-out images, as returned by :func:`mnist_train_heldout`.

    ``train``, ``heldout``: float32 of shape (n, 1, 28, 28) in [0, 1]; ``train_labels``,
    ``heldout_labels``: int64 of shape (n,); ``source``: one sentence saying where the
    training images come from and which images are held out (meant to be printed).
    """

    train: torch.Tensor
    train_labels: torch.Tensor
    heldout: torch.Tensor
    heldout_labels: torch.Tensor
    source: str

    def __repr__(self) -> str:
        return (
            f"MNISTSplit(train={tuple(self.train.shape)}, heldout={tuple(self.heldout.shape)}, "
            f"source={self.source!r})"
        )


def _user_cache() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "lessons_lib", "mnist")


def _absolute(path) -> pathlib.Path:
    return pathlib.Path(os.path.abspath(os.path.expanduser(path)))


def mnist_dir(data_dir=None) -> pathlib.Path:
    """The folder MNIST files are downloaded to, as an absolute path.

    In order: ``data_dir`` when given; else the environment variable ``LESSONS_LIB_MNIST_DIR``
    when set and not empty; else ``$XDG_CACHE_HOME/lessons_lib/mnist``, with
    ``XDG_CACHE_HOME`` defaulting to ``~/.cache``. ``~`` is expanded. The folder is not created
    and need not exist. (Files are *read* from the first folder of :func:`mnist_search_path`
    that has them.)
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_VAR) or _user_cache()
    return _absolute(data_dir)


def mnist_search_path(data_dir=None) -> list[pathlib.Path]:
    """The folders :func:`load_mnist` looks in, in order, as absolute paths.

    ``data_dir`` alone when given (an explicit folder is never second-guessed). Otherwise: the
    folder in ``LESSONS_LIB_MNIST_DIR`` when set and not empty; the checkout's bundled
    ``data/mnist`` (:data:`BUNDLED_MNIST_DIR`, when it exists: an installed copy of the
    package without the repository has none); the user cache folder. Folders need not exist.
    """
    if data_dir is not None and str(data_dir) != "":
        return [_absolute(data_dir)]
    folders = [_absolute(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    if BUNDLED_MNIST_DIR.is_dir():
        folders.append(BUNDLED_MNIST_DIR)
    folders.append(_absolute(_user_cache()))
    return list(dict.fromkeys(folders))  # without repeats, in order


def _fix_hint() -> str:
    return (
        "Delete it and download it again with load_mnist(..., download=True), or point "
        f"{ENV_VAR} (or the data_dir argument) at a folder with a good copy."
    )


def _decode_idx(data: bytes, path, expected_magic: int | None = None) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file of unsigned bytes into a uint8 array.

    The IDX format: a 4-byte big-endian magic number (two zero bytes, the type code 0x08 for
    unsigned bytes, the number of dimensions), one 4-byte big-endian size per dimension, then
    the values in C order. The header and the byte count are checked; a mismatch raises
    :class:`MNISTError` naming ``path``.
    """
    if len(data) < 4:
        raise MNISTError(f"{path} is not an IDX file: only {len(data)} bytes (truncated?)")
    magic = int.from_bytes(data[:4], "big")
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise MNISTError(
            f"{path} is not an IDX file of unsigned bytes (magic number {magic}; MNIST images "
            f"have {_IMAGE_MAGIC}, labels {_LABEL_MAGIC})"
        )
    if expected_magic is not None and magic != expected_magic:
        raise MNISTError(
            f"{path} has magic number {magic}, expected {expected_magic} (MNIST images have "
            f"{_IMAGE_MAGIC}, labels {_LABEL_MAGIC}): is it the right file?"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTError(f"{path} is truncated: {len(data)} bytes, shorter than its header")
    dims = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise MNISTError(
            f"{path} holds {len(data):,} bytes but its header (dimensions {dims}) needs "
            f"{expected:,}: the file is {'truncated' if len(data) < expected else 'too long'}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _decompress(data: bytes, path) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:
        raise MNISTError(
            f"{path} could not be decompressed ({err}): it is truncated or not a gzip file"
        ) from None


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzipped when its name ends in ``.gz``) as a uint8 array.

    No checksum (:func:`load_mnist` checks the MD5 first); the header and the byte count are
    checked, and ``expected_magic`` (2051 for images, 2049 for labels) when given. A mismatch
    raises :class:`MNISTError` naming ``path``.
    """
    path = pathlib.Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = _decompress(data, path)
    return _decode_idx(data, path, expected_magic)


def _raw_size(name: str, count: int) -> int:
    """Exact byte count of a decompressed official file."""
    return 16 + count * _ROWS * _COLS if "images" in name else 8 + count


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _load_verified(path: pathlib.Path, expected_magic: int, count: int) -> np.ndarray:
    """Check the file on disk (MD5, or exact size for the raw training files), then parse it."""
    data = path.read_bytes()
    name = path.name
    expected_md5 = _MD5.get(name)
    expected_size = _GZ_SIZES.get(name) if name.endswith(".gz") else _raw_size(name, count)
    if expected_md5 is not None:
        actual = _md5(data)
        if actual != expected_md5:
            size_note = ""
            if expected_size is not None and len(data) != expected_size:
                size_note = (
                    f"; it has {len(data):,} bytes instead of {expected_size:,}"
                    + (" (truncated or incomplete)" if len(data) < expected_size else "")
                )
            raise MNISTError(
                f"{path} is corrupt: its MD5 checksum is {actual}, expected {expected_md5}"
                f"{size_note}. {_fix_hint()}"
            )
    elif len(data) != expected_size:
        raise MNISTError(
            f"{path} has {len(data):,} bytes, expected exactly {expected_size:,} "
            f"({'truncated or incomplete' if len(data) < expected_size else 'too long'}). "
            f"{_fix_hint()}"
        )
    if name.endswith(".gz"):
        data = _decompress(data, path)
    return _decode_idx(data, path, expected_magic)


def _find(directory: pathlib.Path, name: str) -> pathlib.Path | None:
    """The gzipped file when present, else the decompressed one, else None."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _locate(split: str, data_dir=None) -> dict[str, pathlib.Path] | None:
    """The files of ``split`` from the first folder of the search path that has both, or None."""
    for directory in mnist_search_path(data_dir):
        paths = {name: _find(directory, name) for name in _FILES[split]}
        if all(paths.values()):
            return paths
    return None


def _missing_message(split: str, data_dir) -> str:
    names = " and ".join(f"{n}.gz" for n in _FILES[split])
    searched = "; ".join(str(d) for d in mnist_search_path(data_dir))
    return (
        f"MNIST {split} split not found: {names} (or the same names without .gz) are in none "
        f"of the folders searched ({searched}). Provide the files in one of three ways: pass "
        f"the folder that has them as load_mnist(..., data_dir=...); set the environment variable "
        f"{ENV_VAR} to that folder; or call load_mnist(..., download=True) to download them "
        f"into {mnist_dir(data_dir)} (needs internet). {_BUNDLED_NOTE}"
    )


def _download(name: str, directory: pathlib.Path) -> pathlib.Path:
    """Fetch ``name`` (a ``.gz`` file) from the mirrors in order into ``directory`` (created).

    Each attempt writes a temporary file in ``directory``, checks its MD5 and renames it into
    place with :func:`os.replace`; a failed attempt deletes its temporary file. Raises
    :class:`MNISTError` when no mirror gives a good copy.
    """
    expected = _MD5[name]
    dest = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MNISTError(
            f"cannot create the MNIST folder {directory} ({err}); pass a writable folder as "
            f"data_dir= or set {ENV_VAR}"
        ) from None
    failures, bad_checksum = [], False
    for mirror in MIRRORS:
        url = mirror + name
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        except OSError as err:
            raise MNISTError(
                f"cannot write into the MNIST folder {directory} ({err}); pass a writable "
                f"folder as data_dir= or set {ENV_VAR}"
            ) from None
        try:
            digest, size = hashlib.md5(usedforsecurity=False), 0
            with os.fdopen(fd, "wb") as out:
                with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            actual = digest.hexdigest()
            if actual != expected:
                bad_checksum = True
                failures.append(
                    f"{url} gave {size:,} bytes with MD5 {actual}, expected {expected} (discarded)"
                )
                continue
            os.replace(tmp, dest)
            tmp = None
            print(f"Downloaded {name} ({size:,} bytes, MD5 verified) from {url} to {dest}")
            return dest
        except (OSError, http.client.HTTPException, ValueError) as err:
            # URLError, HTTPError, timeouts and write errors are all OSError.
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            failures.append(f"{url}: {str(reason) or type(err).__name__}")
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
    what = (
        "a download had the wrong checksum"
        if bad_checksum
        else "no network? or the mirrors are unreachable"
    )
    raise MNISTError(
        f"could not download {name} ({what}): " + "; ".join(failures) + ". "
        f"Copy the MNIST files into {directory} or set {ENV_VAR} to a folder that has them."
    )


def load_mnist(split: str = "train", data_dir=None, *, download: bool = False):
    """One MNIST split as ``(images, labels)``.

    ``split``: ``"train"`` (60,000 images) or ``"test"`` (10,000). ``data_dir``: the folder with the
    files; ``None`` searches the folders of :func:`mnist_search_path` (``LESSONS_LIB_MNIST_DIR``,
    the bundled ``data/mnist``, the user cache) and reads the split from the first that has both
    of its files. Each file is looked up as ``NAME.gz`` first, then as the decompressed ``NAME``.

    Returns ``images``, float32 of shape (N, 1, 28, 28) with values ``pixel / 255`` in [0, 1],
    and ``labels``, int64 of shape (N,) with values 0–9, in the official order.

    Checks: the MD5 of each ``.gz`` file against the official value and of the decompressed test
    files against that of the official content; the decompressed *training* files, whose MD5
    is not recorded here, are checked by their exact size (60,000 images) and their header
    instead. Then the IDX header: magic number (2051 images, 2049 labels), dimensions, byte
    count. Any failure raises :class:`MNISTError` naming the file and what to do.

    ``download=True``, when no folder has the split, fetches the files that are missing (and
    only those) from the mirrors into :func:`mnist_dir`, printing one line per file; a file
    that is present but corrupt is never replaced: delete it first. Without internet this raises :class:`MNISTError`.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    count = _COUNTS[split]
    paths = _locate(split, data_dir)
    if paths is None:
        if not download:
            raise MNISTError(_missing_message(split, data_dir))
        directory = mnist_dir(data_dir)  # keep what is there, fetch only what is missing
        paths = {name: _find(directory, name) or _download(f"{name}.gz", directory) for name in _FILES[split]}
    image_name, label_name = _FILES[split]
    images = _load_verified(paths[image_name], _IMAGE_MAGIC, count)
    labels = _load_verified(paths[label_name], _LABEL_MAGIC, count)
    if images.shape != (count, _ROWS, _COLS):
        raise MNISTError(
            f"{paths[image_name]} holds images of shape {images.shape}, expected "
            f"({count}, {_ROWS}, {_COLS}). {_fix_hint()}"
        )
    if labels.shape != (count,) or (labels.size and labels.max() > 9):
        raise MNISTError(
            f"{paths[label_name]} does not hold {count} labels in 0..9 (shape {labels.shape}). "
            f"{_fix_hint()}"
        )
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).reshape(count, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def heldout_indices(n_heldout: int = 2000, *, seed: int = 0) -> torch.Tensor:
    """The indices into the test split of the held-out digits: the first ``n_heldout`` of a
    random permutation of 0..9,999 drawn with ``torch.Generator().manual_seed(seed)``.

    A random draw, not a contiguous block: the MNIST test split is ordered (its first 5,000
    digits come from NIST's original training set, its last 5,000 from NIST's test set, which
    the MNIST page calls harder), so a block would hold out another mix of writers than the one
    trained on. The order is the permutation's, so any
    prefix, and the two halves, are random subsets too.
    """
    n_heldout = require_count(n_heldout, "n_heldout", minimum=1)
    n_test = _COUNTS["test"]
    if n_heldout >= n_test:
        raise ValueError(f"n_heldout must be at most {n_test - 1:,}, got {n_heldout:,}")
    seed = require_count(seed, "seed", minimum=0)
    return torch.randperm(n_test, generator=torch.Generator().manual_seed(seed))[:n_heldout]


def mnist_train_heldout(
    data_dir=None, n_heldout: int = 2000, *, seed: int = 0, download: bool = False
) -> MNISTSplit:
    """Training images and a fixed, random held-out set, as an :class:`MNISTSplit`.

    The held-out set is always the ``n_heldout`` test images of :func:`heldout_indices` (seeded,
    so the same on every machine), whatever the training data, so that quality measurements
    are comparable between runs. The training images are the official training split (60,000
    images) when a folder of :func:`mnist_search_path` has both of its files (or with
    ``download=True``); otherwise the other ``10000 - n_heldout`` images of the test split, in
    their original order. Either way training and held-out digits come from the same mix of
    writers. ``source`` says which, in a sentence meant to be printed. ``data_dir`` and
    ``download`` are as in :func:`load_mnist`; ``n_heldout`` is a whole number from 1 to 9,999.
    """
    held = heldout_indices(n_heldout, seed=seed)
    test_x, test_y = load_mnist("test", data_dir, download=download)
    heldout, heldout_labels = test_x[held], test_y[held]
    if download or _locate("train", data_dir) is not None:
        train, train_labels = load_mnist("train", data_dir, download=download)
        where = _locate("train", data_dir)[_FILES["train"][0]].parent  # after a download, too
        source = (
            f"training on the {len(train):,} images of the official training split in "
            f"{where}; {n_heldout:,} random images of the test split are held out"
        )
    else:
        keep = torch.ones(len(test_x), dtype=torch.bool)
        keep[held] = False
        train, train_labels = test_x[keep], test_y[keep]
        source = (
            f"the training split is not available (load_mnist('train', download=True) fetches "
            f"it); training on {len(train):,} images of the test split, the other "
            f"{n_heldout:,} (drawn at random, seed {seed}) are held out"
        )
    return MNISTSplit(train, train_labels, heldout, heldout_labels, source)
