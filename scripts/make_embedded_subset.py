"""Make the small MNIST subset shipped in ``sparsebench/data/embedded/`` from the real MNIST files.

Selection: from the official training set, 500 images of each digit (5,000 in all); from the official
test set, 100 of each digit (1,000). Within each digit, the images are those with the smallest keys among
uniform random keys drawn by ``numpy.random.default_rng(SEED)`` (training set first, then test set,
one key per image in file order); the chosen images keep their order in the original files.
The output is the four standard IDX files, gzip-compressed with no file name and mtime=0, so that
rerunning the script on the same data gives identical bytes.

Usage (from the repository root):
    python scripts/make_embedded_subset.py [--source ../shared/data/mnist] [--out sparsebench/data/embedded]

It prints the md5 of each written file and of its decompressed bytes (for conf/dataset/embedded.yaml).
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparsebench.data import idx  # noqa: E402  (after the path set-up, so the script runs from a clone)

SEED = 20190101
TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 100
NUM_CLASSES = 10
# md5 of the decompressed official files (../shared/data/README.md), checked before anything is written.
SOURCE_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def choose(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random images of each class, in their original order."""
    keys = rng.random(len(labels))  # one key per image, so the draw does not depend on numpy's choice()
    chosen = []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        if len(members) < per_class:
            raise SystemExit(f"only {len(members)} images of digit {digit}, fewer than {per_class}")
        chosen.append(members[np.argsort(keys[members], kind="stable")[:per_class]])
    return np.sort(np.concatenate(chosen))


def find(source: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (f"{stem}.gz", stem):
        if (source / name).is_file():
            return source / name
    raise SystemExit(f"{source} has no {stem}.gz (nor {stem}); pass --source with the real MNIST files")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=pathlib.Path, default=REPO.parent / "shared" / "data" / "mnist",
                        help="folder with the four real MNIST IDX files (.gz or not)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "sparsebench" / "data" / "embedded",
                        help="folder to write the subset into")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", TRAIN_PER_CLASS), ("t10k", TEST_PER_CLASS)):
        images_stem, labels_stem = f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"
        images = idx.read_images(find(args.source, images_stem), SOURCE_MD5[images_stem])
        labels = idx.read_labels(find(args.source, labels_stem), SOURCE_MD5[labels_stem])
        chosen = choose(labels, per_class, rng)
        for kind, array in (("images-idx3", images[chosen]), ("labels-idx1", labels[chosen])):
            path = args.out / f"{split}-{kind}-ubyte.gz"
            content = idx.encode(array)
            packed = idx.gzip_bytes(content)
            path.write_bytes(packed)
            print(f"{path.name}: {len(packed)} bytes, md5 {hashlib.md5(packed).hexdigest()}, "
                  f"content md5 {hashlib.md5(content).hexdigest()} ({len(content)} bytes)")


if __name__ == "__main__":
    main()
