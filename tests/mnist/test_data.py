"""The MNIST loader: IDX parsing, folder resolution, checksums, clear errors, opt-in download.

No test touches the internet: ``urllib.request.urlopen`` is replaced for every test, and the
download tests serve bytes of the test split bundled in the repository (``data/mnist``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from lessons_lib.mnist import data
from lessons_lib.mnist.data import (
    BUNDLED_MNIST_DIR,
    MIRRORS,
    MNISTError,
    MNISTSplit,
    heldout_indices,
    load_mnist,
    mnist_dir,
    mnist_search_path,
    mnist_train_heldout,
    read_idx,
)

# The test split shipped with the repository (found here independently of the library).
BUNDLED = (Path(__file__).parents[2] / "data" / "mnist").resolve()
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# The official MD5 and size of each file (the values torchvision checks too).
OFFICIAL = {"t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", 1_648_877),
            "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", 4_542)}
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Fail loudly if anything tries to open a URL that a test did not arrange."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def test_split():
    return load_mnist("test", BUNDLED)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No LESSONS_LIB_MNIST_DIR, and an empty user cache: only the repository is left."""
    monkeypatch.delenv("LESSONS_LIB_MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "lessons_lib" / "mnist"


def copy_test_split(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in TEST_FILES:
        shutil.copyfile(BUNDLED / f, dest / f)
    return dest


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (magic if magic is not None else 0x0800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def md5(blob: bytes) -> str:
    return hashlib.md5(blob, usedforsecurity=False).hexdigest()


def serve(payloads: dict[str, bytes], calls: list | None = None):
    """A stand-in for urlopen that serves ``payloads[file name]``, or fails like no network."""

    def urlopen(url, timeout=None):
        assert timeout is not None, "downloads must use a timeout"
        if calls is not None:
            calls.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in payloads:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(payloads[name])

    return urlopen


# --- the offline test split --------------------------------------------------------------------


def test_bundled_test_split_is_the_official_one(test_split):
    assert {f: (md5((BUNDLED / f).read_bytes()), (BUNDLED / f).stat().st_size) for f in TEST_FILES} == OFFICIAL
    assert BUNDLED_MNIST_DIR == BUNDLED
    x, y = test_split
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert x.min().item() == 0.0 and x.max().item() == 1.0
    assert torch.bincount(y, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # pixels are k / 255 exactly
    k = x[:100] * 255
    assert torch.equal(k, k.round())


def test_raw_files_are_read_and_verified(tmp_path, test_split):
    for f in TEST_FILES:
        (tmp_path / f.removesuffix(".gz")).write_bytes(gzip.decompress((BUNDLED / f).read_bytes()))
    x, y = load_mnist("test", tmp_path)
    assert torch.equal(x, test_split[0]) and torch.equal(y, test_split[1])
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    blob = bytearray(raw.read_bytes())
    blob[100] ^= 1
    raw.write_bytes(bytes(blob))
    with pytest.raises(MNISTError, match="MD5") as err:
        load_mnist("test", tmp_path)
    assert str(raw) in str(err.value)


def test_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation")


# --- the IDX parser ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9], dtype=np.uint8)
    write_idx(tmp_path / f"imgs{suffix}", images)
    write_idx(tmp_path / f"lbls{suffix}", labels)
    got = read_idx(tmp_path / f"imgs{suffix}", expected_magic=2051)
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    assert np.array_equal(read_idx(tmp_path / f"lbls{suffix}", expected_magic=2049), labels)


def test_idx_errors(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "lbls", labels)
    with pytest.raises(MNISTError, match="magic number 2049, expected 2051"):
        read_idx(tmp_path / "lbls", expected_magic=2051)
    (tmp_path / "short").write_bytes((tmp_path / "lbls").read_bytes()[:-3])
    with pytest.raises(MNISTError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(MNISTError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "lbls.gz", labels)
    (tmp_path / "cut.gz").write_bytes((tmp_path / "lbls.gz").read_bytes()[:-6])
    with pytest.raises(MNISTError, match="cut.gz could not be decompressed"):
        read_idx(tmp_path / "cut.gz")


# --- where the files are looked for ------------------------------------------------------------


def test_dir_from_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("LESSONS_LIB_MNIST_DIR", str(tmp_path / "env"))
    assert mnist_dir() == tmp_path / "env"
    assert mnist_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    assert mnist_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_dir_falls_back_to_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LESSONS_LIB_MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist_dir() == tmp_path / "xdg" / "lessons_lib" / "mnist"
    monkeypatch.setenv("LESSONS_LIB_MNIST_DIR", "")  # empty counts as unset
    assert mnist_dir() == tmp_path / "xdg" / "lessons_lib" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist_dir() == tmp_path / "home" / ".cache" / "lessons_lib" / "mnist"


def test_load_uses_env_var(monkeypatch, tmp_path):
    copy_test_split(tmp_path / "env")
    monkeypatch.setenv("LESSONS_LIB_MNIST_DIR", str(tmp_path / "env"))
    x, _ = load_mnist("test")
    assert x.shape == (10000, 1, 28, 28)
    # the env folder comes first: a corrupt copy there is an error, not silently skipped
    (tmp_path / "env" / TEST_FILES[1]).write_bytes(b"junk")
    with pytest.raises(MNISTError, match="corrupt") as err:
        load_mnist("test")
    assert str(tmp_path / "env") in str(err.value)
    # the argument beats everything: an empty folder is searched, and only it
    with pytest.raises(MNISTError) as err:
        load_mnist("test", tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value) and str(BUNDLED) not in str(err.value)


def test_search_path_order(monkeypatch, tmp_path, no_env):
    assert mnist_search_path() == [BUNDLED, no_env]
    monkeypatch.setenv("LESSONS_LIB_MNIST_DIR", str(tmp_path / "env"))
    assert mnist_search_path() == [tmp_path / "env", BUNDLED, no_env]
    assert mnist_search_path(tmp_path / "arg") == [tmp_path / "arg"]
    monkeypatch.setenv("LESSONS_LIB_MNIST_DIR", str(BUNDLED))  # no folder twice
    assert mnist_search_path() == [BUNDLED, no_env]


def test_fresh_clone_reads_the_bundled_test_split(no_env, monkeypatch, tmp_path, test_split):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    x, y = load_mnist("test")
    assert torch.equal(x, test_split[0]) and torch.equal(y, test_split[1])
    # an env folder without the test split falls through to the bundled copy
    monkeypatch.setenv("LESSONS_LIB_MNIST_DIR", str(tmp_path / "elsewhere"))
    assert torch.equal(load_mnist("test")[1], y)
    split = mnist_train_heldout()
    assert len(split.train) == 8000 and "not available" in split.source


def test_training_split_is_never_looked_for_in_the_repository(no_env):
    with pytest.raises(MNISTError) as err:
        load_mnist("train")
    msg = str(err.value)
    assert str(BUNDLED) in msg and str(no_env) in msg  # every folder searched is named
    assert "test split only" in msg and "download=True" in msg and "make mnist-train" in msg
    assert "shared" not in msg


def test_download_goes_to_the_user_cache(no_env, monkeypatch):
    calls = []
    labels = (BUNDLED / TEST_FILES[1]).read_bytes()
    monkeypatch.setitem(data._MD5, "train-labels-idx1-ubyte.gz", md5(labels))
    monkeypatch.setitem(data._MD5, "train-images-idx3-ubyte.gz", OFFICIAL[TEST_FILES[0]][0])
    monkeypatch.setitem(data._COUNTS, "train", 10000)
    payloads = {"train-images-idx3-ubyte.gz": (BUNDLED / TEST_FILES[0]).read_bytes(),
                "train-labels-idx1-ubyte.gz": labels}
    monkeypatch.setattr(urllib.request, "urlopen", serve(payloads, calls))
    x, _ = load_mnist("train", download=True)
    assert len(calls) == 2 and x.shape == (10000, 1, 28, 28)
    assert sorted(p.name for p in no_env.iterdir()) == sorted(payloads)
    assert not (BUNDLED / "train-images-idx3-ubyte.gz").exists()
    split = mnist_train_heldout()
    assert len(split.train) == 10000 and str(no_env) in split.source


# --- clear errors ------------------------------------------------------------------------------


def test_corrupt_file(tmp_path):
    copy_test_split(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[5000] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(MNISTError) as err:
        load_mnist("test", tmp_path)
    msg = str(err.value)
    assert str(path) in msg
    assert "9fb629c4189551a2d022fa330f9573f3" in msg  # expected
    assert md5(bytes(blob)) in msg  # actual
    assert "download=True" in msg and "LESSONS_LIB_MNIST_DIR" in msg


def test_truncated_file(tmp_path):
    copy_test_split(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MNISTError, match="truncated") as err:
        load_mnist("test", tmp_path)
    assert str(path) in str(err.value)


def test_missing_files(tmp_path):
    with pytest.raises(MNISTError) as err:
        load_mnist("train", tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert "download=True" in msg and "LESSONS_LIB_MNIST_DIR" in msg and "data_dir=" in msg
    assert "data/mnist" in msg and "test split only" in msg and "shared" not in msg


# --- download (urlopen replaced) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        TimeoutError("timed out"),
    ],
)
def test_download_without_network(monkeypatch, tmp_path, failure):
    def urlopen(url, timeout=None):
        raise failure

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    target = tmp_path / "mnist"
    with pytest.raises(MNISTError) as err:
        load_mnist("test", target, download=True)
    msg = str(err.value)
    assert "no network" in msg and "could not download" in msg
    assert str(target) in msg and "LESSONS_LIB_MNIST_DIR" in msg
    assert list(target.iterdir()) == []  # no temporary file left behind


def test_download_into_unwritable_folder(monkeypatch, tmp_path):
    def mkstemp(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.tempfile, "mkstemp", mkstemp)
    with pytest.raises(MNISTError, match="cannot write into the MNIST folder") as err:
        load_mnist("test", tmp_path, download=True)
    assert str(tmp_path) in str(err.value) and "no network" not in str(err.value)


def test_download_serves_verified_files(monkeypatch, tmp_path, capsys, test_split):
    calls = []
    payloads = {f: (BUNDLED / f).read_bytes() for f in TEST_FILES}
    monkeypatch.setattr(urllib.request, "urlopen", serve(payloads, calls))
    target = tmp_path / "cache" / "mnist"
    x, y = load_mnist("test", target, download=True)
    assert torch.equal(x, test_split[0]) and torch.equal(y, test_split[1])
    assert sorted(p.name for p in target.iterdir()) == sorted(TEST_FILES)
    assert calls == [MIRRORS[0] + f for f in TEST_FILES]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("Downloaded" in line for line in lines)
    # present files are not downloaded again
    calls.clear()
    load_mnist("test", target, download=True)
    assert calls == []


def test_download_corrupt_payload(monkeypatch, tmp_path):
    payloads = {f: (BUNDLED / f).read_bytes()[:-10] for f in TEST_FILES}
    monkeypatch.setattr(urllib.request, "urlopen", serve(payloads))
    with pytest.raises(MNISTError, match="wrong checksum") as err:
        load_mnist("test", tmp_path, download=True)
    assert "9fb629c4189551a2d022fa330f9573f3" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_download_falls_back_to_next_mirror(monkeypatch, tmp_path):
    good = (BUNDLED / TEST_FILES[1]).read_bytes()

    def urlopen(url, timeout=None):
        if url.startswith(MIRRORS[0]):
            return io.BytesIO(good[:-1])  # corrupt on the first mirror
        return io.BytesIO(good)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    shutil.copyfile(BUNDLED / TEST_FILES[0], tmp_path / TEST_FILES[0])
    _, y = load_mnist("test", tmp_path, download=True)
    assert torch.bincount(y).tolist() == TEST_LABEL_COUNTS
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(TEST_FILES)


# --- training / held-out split -----------------------------------------------------------------


def test_train_heldout_from_test_split_only(test_split):
    split = mnist_train_heldout(BUNDLED)
    assert isinstance(split, MNISTSplit)
    x, y = test_split
    assert split.train.shape == (8000, 1, 28, 28) and split.heldout.shape == (2000, 1, 28, 28)
    assert split.train_labels.shape == (8000,) and split.heldout_labels.shape == (2000,)
    # held out: the seeded random indices; training: every other test image, in order
    held = heldout_indices(2000, seed=0)
    assert torch.equal(held, torch.randperm(10000, generator=torch.Generator().manual_seed(0))[:2000])
    assert len(set(held.tolist())) == 2000
    assert torch.equal(split.heldout, x[held]) and torch.equal(split.heldout_labels, y[held])
    rest = sorted(set(range(10000)) - set(held.tolist()))
    assert torch.equal(split.train, x[rest]) and torch.equal(split.train_labels, y[rest])
    # the same mix of writers: both parts draw about half their digits from each half of the split
    assert 0.45 < (held < 5000).float().mean() < 0.55
    assert torch.equal(heldout_indices(2000, seed=0), held)  # seeded: the same on every machine
    assert not torch.equal(heldout_indices(2000, seed=1), held)
    assert "test split" in split.source and "not available" in split.source
    assert "8,000" in split.source and "2,000" in split.source and "seed 0" in split.source
    assert repr(split).startswith("MNISTSplit(train=(8000, 1, 28, 28), heldout=(2000, 1, 28, 28)")

    small = mnist_train_heldout(BUNDLED, n_heldout=500)
    assert torch.equal(small.heldout, x[held[:500]]) and len(small.train) == 9500
    with pytest.raises(ValueError, match="n_heldout"):
        mnist_train_heldout(BUNDLED, n_heldout=10000)


def test_train_heldout_uses_training_split_when_present(monkeypatch, tmp_path):
    # A stand-in training split of 50 raw images (the raw training files are checked by their
    # exact size, so shrinking the expected count lets a tiny synthetic copy pass).
    monkeypatch.setitem(data._COUNTS, "train", 50)
    copy_test_split(tmp_path)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=50, dtype=np.uint8)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)

    partial = mnist_train_heldout(tmp_path)  # one training file missing: falls back, says so
    assert len(partial.train) == 8000 and "not available" in partial.source

    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    split = mnist_train_heldout(tmp_path)
    assert split.train.shape == (50, 1, 28, 28)
    assert torch.equal(split.train[:, 0], torch.from_numpy(images).float() / 255)
    assert split.train_labels.tolist() == labels.tolist()
    assert len(split.heldout) == 2000 and "official training split" in split.source
