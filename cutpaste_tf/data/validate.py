"""Checking a category's files before anything is built: every image, every mask, once, on the CPU.

Training runs for hours on rented accelerators, so whatever can be found wrong with the data is
found first. :func:`validate_category` reads every image's header (size, bit depth, colour type)
without decoding its pixels, refuses images over a pixel limit (decompression bombs) or under a
minimum size, then decodes each image once with the same decoder the pipeline uses. Problems are
collected over all files and raised together as one :class:`~cutpaste_tf.data.index.DataError`
that names each file and what is wrong with it.

What is accepted, converted the way :func:`cutpaste_tf.data.pipeline.decode` converts it:
8- and 16-bit PNGs (16-bit values scaled by 255/65535, not clipped), palette PNGs (expanded),
grey and grey+alpha (grey copied to RGB), RGBA (alpha dropped), JPEG and BMP.

Masks are taken as they come and read by :func:`cutpaste_tf.data.masks.read_mask`, the one
reader the pixel metrics use too: grey, palette, RGB or RGBA; 0/1, 0/255, 16-bit, smoothed or
JPEG-compressed; PNG, JPEG, BMP or TIFF; binarised by one rule (``--mask_threshold``, see that
module). Each conversion is counted, and :meth:`ValidationReport.notes` prints one line per kind
of conversion (``24 masks binarised at 128 of 255: ...``), never one per file. A mask of another
size than its image but the same aspect ratio (within 1 %) is resized to it with nearest
neighbour and counted. Warnings, naming the files: an all-zero mask of a defective image, a mask
that marks every pixel as a defect. Errors: a missing mask once any of a category's masks exist,
a mask of another aspect ratio than its image (naming both), a mask that cannot be read or
decoded.

What is skipped with a counted warning: files in the image folders whose names do not end in an
image extension (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``), such as ``.DS_Store`` or notes;
the indexer never lists them. A file *with* an image extension that is not a decodable image is
an error, not a skip: it is a damaged dataset, and skipping it would silently change the data.

No image may be in two of the training, validation and test sets: a network scores the images
it trained on as normal, so a test image it trained on inflates the AUROC (the same folder as
training and test folder gave an untrained network an image AUROC of 100). Each image is
matched by its resolved path (symlinks and ``a/../a`` are the same file) and by a BLAKE2b hash
of its bytes (a copy under another name), hashed from the one read that decodes it;
:func:`find_overlaps` names the first pairs and counts them all. Copies of one image within
the training set are only a warning: a ``--val_fraction`` hold-out may keep one copy out while
the other trains.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import os
from typing import Mapping, Optional, Sequence

import tensorflow as tf

from cutpaste_tf.data import masks as mask_lib
from cutpaste_tf.data.headers import ImageHeader, read_header
from cutpaste_tf.data.index import CategoryData, DataError

__all__ = ["ImageHeader", "ValidationReport", "find_overlaps", "format_problems", "hash_files",
           "read_header", "validate_category"]

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: MVTec AD's largest images are 1024 x 1024 (1 MP).
DEFAULT_MIN_SIZE = 32  # the smallest --image_size the model accepts
MAX_LISTED = 20  # problems listed in one error message; the rest are counted
MAX_NAMED = 5  # files named in one warning line; the rest are counted
ASPECT_TOLERANCE = 0.01  # relative aspect-ratio difference up to which a mask is resized
RESIZED = "masks resized to their image's size (nearest neighbour)"
MERGED = "image(s) with several mask files, merged by logical OR"


@dataclasses.dataclass
class ValidationReport:
    """What :func:`validate_category` found that is not an error."""

    category: str
    num_images: int = 0
    num_masks: int = 0
    ignored_files: tuple[str, ...] = ()
    upscaled: int = 0  # images smaller than the training size, which get upscaled
    conversions: dict = dataclasses.field(default_factory=dict)  # "16-bit" -> count, ...
    # How masks were read: phrase ("masks read as 0/1 (1 = defect)") -> count.
    mask_conversions: dict = dataclasses.field(default_factory=dict)
    empty_masks: list = dataclasses.field(default_factory=list)  # of defective images
    full_masks: list = dataclasses.field(default_factory=list)  # every pixel a defect
    # Training images whose bytes repeat an earlier training image's: (copy, first).
    train_copies: list = dataclasses.field(default_factory=list)
    # BLAKE2b of every image's bytes (path -> hex digest), for later overlap checks.
    digests: dict = dataclasses.field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line per kind of mask conversion, with its count (empty if masks were clean)."""
        return [f"[{self.category}] {_counted(n, phrase)}"
                for phrase, n in sorted(self.mask_conversions.items())]

    def warnings(self) -> list[str]:
        """One line per counted warning (empty if there is nothing to say)."""
        lines = []
        if self.ignored_files:
            shown = ", ".join(self.ignored_files[:3])
            more = f" and {len(self.ignored_files) - 3} more" if len(self.ignored_files) > 3 else ""
            lines.append(f"[{self.category}] skipped {len(self.ignored_files)} file(s) that are "
                         f"not images by their name: {shown}{more}")
        if self.upscaled:
            lines.append(f"[{self.category}] {self.upscaled} image(s) are smaller than the "
                         "training size and will be upscaled")
        if self.empty_masks:
            lines.append(f"[{self.category}] {len(self.empty_masks)} defective image(s) have an "
                         f"all-zero mask (no defect pixel): {_named(self.empty_masks)}")
        if self.full_masks:
            lines.append(f"[{self.category}] {len(self.full_masks)} mask(s) mark every pixel as "
                         f"a defect (inverted, defects black on white?): "
                         f"{_named(self.full_masks)}")
        if self.train_copies:
            pairs = [f"{copy} = {first}" for copy, first in self.train_copies]
            lines.append(f"[{self.category}] {len(pairs)} training image(s) have the same bytes "
                         f"as another training image (a --val_fraction hold-out may keep one "
                         f"copy out while the other trains): {_named(pairs)}")
        return lines

    def summary(self) -> str:
        converted = ", ".join(f"{n} {kind}" for kind, n in sorted(self.conversions.items()))
        text = f"[{self.category}] checked {self.num_images} images and {self.num_masks} masks"
        return text + (f" (converted to 8-bit RGB: {converted})" if converted else "")


def _counted(n: int, phrase: str) -> str:
    if n == 1:
        phrase = phrase.replace("masks", "mask", 1).replace(" their image's", " its image's")
    return f"{n} {phrase}"


def _named(files: Sequence[str]) -> str:
    more = f" and {len(files) - MAX_NAMED} more" if len(files) > MAX_NAMED else ""
    return ", ".join(files[:MAX_NAMED]) + more


def validate_category(data: CategoryData, min_size: int = DEFAULT_MIN_SIZE,
                      max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True,
                      image_size: Optional[Sequence[int]] = None,
                      workers: Optional[int] = None,
                      mask_threshold: float = mask_lib.DEFAULT_THRESHOLD) -> ValidationReport:
    """Checks every image and mask of ``data``; raises one DataError listing every problem.

    Args:
      data: the indexed category; a mask entry is None, a path or a tuple of paths.
      min_size: smallest height or width, in pixels, an image may have.
      max_pixels: largest width * height an image or mask may have; checked from the header,
        before any pixel is decoded (a guard against decompression bombs).
      decode: also decode every image and mask once (catches truncated and corrupt files, and
        counts how masks are converted); False checks headers only.
      image_size: the training (height, width); smaller images are counted in the report
        (they will be upscaled).
      workers: decoding threads (default: the CPU count, at most 16).
      mask_threshold: the binarisation threshold of :mod:`cutpaste_tf.data.masks`.

    Returns:
      A :class:`ValidationReport` with counted warnings and the conversions seen.
    """
    if min_size < 1 or max_pixels < 1:
        raise ValueError(f"min_size and max_pixels must be positive, got {min_size}, {max_pixels}")
    mask_lib.check_threshold(mask_threshold)
    report = ValidationReport(data.name, ignored_files=data.ignored_files)
    images = list(dict.fromkeys(data.train_files + data.val_files + data.test_files))
    entries = {image: mask_lib.mask_paths(entry)
               for image, entry in zip(data.test_files, data.mask_files)
               if mask_lib.mask_paths(entry)}
    mask_files = list(dict.fromkeys(path for files in entries.values() for path in files))
    headers, problems = _read_headers(images + mask_files, max_pixels)
    problems += _check_images(images, headers, min_size, image_size, report)
    problems += _check_masks(data, entries, headers, report)
    workers = workers or min(16, os.cpu_count() or 1)
    if decode:
        problems += _decode_all(data, images, entries, headers, mask_threshold, workers, report)
    else:
        report.digests.update(hash_files([p for p in images if p in headers], workers))
    problems += find_overlaps({"training": data.train_files, "validation": data.val_files,
                               "test": data.test_files}, report.digests)
    report.train_copies = _copies(data.train_files, report.digests)
    report.num_images, report.num_masks = len(images), len(mask_files)
    if problems:
        raise DataError(format_problems(data.name, problems))
    return report


def _read_headers(paths: Sequence[str], max_pixels: int
                  ) -> tuple[dict[str, ImageHeader], list[str]]:
    """The headers of the files that can be decoded, and what is wrong with the others
    (unreadable, over ``max_pixels``, empty)."""
    headers: dict[str, ImageHeader] = {}
    problems: list[str] = []
    for path in paths:
        try:
            header = read_header(path)
        except DataError as e:
            problems.append(str(e))
            continue
        if header.pixels > max_pixels:
            problems.append(f"{path}: {header.width}x{header.height} is {header.pixels:,} pixels, "
                            f"over the limit of {max_pixels:,} (max_image_pixels); not decoded")
            continue
        if header.width == 0 or header.height == 0:
            problems.append(f"{path}: header says {header.width}x{header.height}, an empty image")
            continue
        headers[path] = header
    return headers, problems


def _check_images(images: Sequence[str], headers: dict[str, ImageHeader], min_size: int,
                  image_size: Optional[Sequence[int]], report: ValidationReport) -> list[str]:
    """Images under ``min_size`` (a problem; no longer decoded); counts the conversions to
    8-bit RGB and the images smaller than ``image_size`` in ``report``."""
    problems = []
    for path in images:
        header = headers.get(path)
        if header is None:
            continue
        if min(header.width, header.height) < min_size:
            problems.append(f"{path}: {header.width}x{header.height} is smaller than the minimum "
                            f"of {min_size} px per side (min_image_size)")
            del headers[path]
            continue
        if header.conversion:
            report.conversions[header.conversion] = report.conversions.get(header.conversion, 0) + 1
        if image_size is not None and (header.height < image_size[0]
                                       or header.width < image_size[1]):
            report.upscaled += 1
    return problems


def _decode_all(data: CategoryData, images: Sequence[str], entries: dict[str, tuple[str, ...]],
                headers: dict[str, ImageHeader], threshold: float, workers: int,
                report: ValidationReport) -> list[str]:
    """Decodes every image, and reads every image's masks, once (on ``workers`` threads):
    what is wrong with them; the masks' conversions and all-zero or all-defect masks go to
    ``report``."""
    problems = []
    labels = dict(zip(data.test_files, data.test_labels))
    jobs = [(image, files) for image, files in entries.items()
            if all(path in headers for path in files)]
    readable = [p for p in images if p in headers]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for path, (problem, digest) in zip(readable, pool.map(
                lambda p: _decode_problem(p, headers[p]), readable)):
            if problem:
                problems.append(problem)
            if digest:
                report.digests[path] = digest
        for (image, files), (bad, notes, empty, full) in zip(jobs, pool.map(
                lambda job: _read_masks(job[0], job[1], headers, threshold), jobs)):
            problems += bad
            for phrase in notes:
                report.mask_conversions[phrase] = report.mask_conversions.get(phrase, 0) + 1
            if empty and labels.get(image):
                report.empty_masks.append(" + ".join(files))
            if full:
                report.full_masks.append(" + ".join(files))
    return problems


def _check_masks(data: CategoryData, entries: dict[str, tuple[str, ...]],
                 headers: dict[str, ImageHeader], report: ValidationReport) -> list[str]:
    """Missing masks (once a category has some); masks of another size than their image:
    counted (they are resized) if the aspect ratio is the same, else a problem."""
    problems = []
    defective = [p for p, label in zip(data.test_files, data.test_labels) if label]
    if entries:
        missing = [p for p in defective if p not in entries]
        for path in missing:
            problems.append(f"{path}: defective test image without a mask, while "
                            f"{len(defective) - len(missing)} of the category's "
                            f"{len(defective)} defective images have one "
                            f"(expected {_expected_mask(data, path)})")
    for image, files in entries.items():
        for mask in files:
            if image not in headers or mask not in headers:
                continue
            a, b = headers[image], headers[mask]
            if (a.width, a.height) == (b.width, b.height):
                continue
            ratio = (b.width / b.height) / (a.width / a.height)
            if abs(ratio - 1.0) > ASPECT_TOLERANCE:
                problems.append(f"{mask}: mask is {b.width}x{b.height} but its image {image} is "
                                f"{a.width}x{a.height}, another aspect ratio: not resized")
                del headers[mask]
            else:
                report.mask_conversions[RESIZED] = report.mask_conversions.get(RESIZED, 0) + 1
    return problems


def _expected_mask(data: CategoryData, image: str) -> str:
    """Where the indexer looked for an image's mask (beside the other masks)."""
    stem = os.path.splitext(os.path.basename(image))[0]
    defect = os.path.basename(os.path.dirname(image))
    test_dir = os.path.dirname(os.path.dirname(image))
    if os.path.basename(test_dir) == "test":  # MVTec AD layout
        return os.path.join(os.path.dirname(test_dir), "ground_truth", defect, f"{stem}_mask.png")
    return f"{stem}_mask.png or {stem}.png in the mask folder"


def _decode_problem(path: str, header: ImageHeader) -> tuple[Optional[str], Optional[str]]:
    """Decodes image ``path`` as the pipeline does: (what is wrong with it or None, the
    BLAKE2b of its bytes or None if they could not be read)."""
    digest = None
    try:
        contents = tf.io.read_file(path)
        digest = _digest(contents.numpy())
        image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8,
                                   expand_animations=False).numpy()
    except tf.errors.OpError as e:
        reason = mask_lib.op_error_reason(e)
        return f"{path}: truncated or corrupt {header.format} image ({reason})", digest
    if image.shape[:2] != (header.height, header.width):
        return (f"{path}: decodes to {image.shape[1]}x{image.shape[0]} but its header says "
                f"{header.width}x{header.height}"), digest
    return None, digest


# ---------------------------------------------------------------------------------------------
# The same image in two sets.


def _digest(contents: bytes) -> str:
    return hashlib.blake2b(contents, digest_size=16).hexdigest()


def hash_files(paths: Sequence[str], workers: Optional[int] = None) -> dict[str, str]:
    """BLAKE2b of each readable file's bytes (path -> hex digest); unreadable files are left
    out (the header check names them)."""

    def one(path: str) -> Optional[str]:
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                return _digest(f.read())
        except (OSError, tf.errors.OpError):
            return None

    with concurrent.futures.ThreadPoolExecutor(
            max_workers=workers or min(16, os.cpu_count() or 1)) as pool:
        return {p: d for p, d in zip(paths, pool.map(one, paths)) if d}


def _resolved(path: str) -> str:
    """The file a local path names (symlinks and ``..`` resolved); other URLs as given."""
    return path if "://" in path else os.path.realpath(path)


def find_overlaps(sets: Mapping[str, Sequence[str]], digests: Mapping[str, str],
                  involving: Optional[str] = None) -> list[str]:
    """One problem per pair of ``sets`` (name -> image paths, in order) that share an image:
    the same file (resolved path) or the same bytes (``digests``: path -> hash), with the
    number of such images and the first :data:`MAX_NAMED` pairs; only the pairs with set
    ``involving`` if given."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}  # (how, key) -> (set name, path)
    pairs: dict[tuple[str, str], list[str]] = {}
    for name, paths in sets.items():
        mine: dict[tuple[str, str], tuple[str, str]] = {}
        for path in paths:
            keys = [("file", _resolved(path))]
            if path in digests:
                keys.append(("bytes", digests[path]))
            match = next((seen[k] for k in keys if k in seen), None)
            if match is not None:
                other = match[1]
                named = (path if path == other else f"{path} (= {other})"
                         if _resolved(path) == _resolved(other)
                         else f"{path} (the bytes of {other})")
                pairs.setdefault((name, match[0]), []).append(named)
            for key in keys:
                mine.setdefault(key, (name, path))
        for key, value in mine.items():
            seen.setdefault(key, value)
    return [f"{len(found)} {name} image(s) are also {earlier} images, as the same file or "
            f"the same bytes: {_named(found)}; {_why(earlier)}: give the {name} set other images"
            for (name, earlier), found in pairs.items() if involving in (None, name, earlier)]


def _why(earlier: str) -> str:
    if earlier == "training":
        return "a network scores the images it trained on as normal, so results would be inflated"
    return f"what is chosen on the {earlier} images would be judged on the same images"


def _copies(paths: Sequence[str], digests: Mapping[str, str]) -> list[tuple[str, str]]:
    """(copy, first) for each of ``paths`` whose bytes repeat an earlier one's."""
    first: dict[str, str] = {}
    copies = []
    for path in paths:
        digest = digests.get(path)
        if digest is None:
            continue
        if digest in first and _resolved(first[digest]) != _resolved(path):
            copies.append((path, first[digest]))
        first.setdefault(digest, path)
    return copies


def _read_masks(image: str, files: Sequence[str], headers: dict[str, ImageHeader],
                threshold: float) -> tuple[list[str], list[str], bool, bool]:
    """Reads one image's mask files as :func:`~cutpaste_tf.data.masks.read_mask` does:
    (problems, conversion phrases, no defect pixel, every pixel a defect)."""
    problems, notes, any_defect, merged = [], [], False, None
    size = (headers[image].height, headers[image].width) if image in headers else None
    for path in files:
        try:
            decoded = mask_lib.read_file(path)
        except DataError as e:
            problems.append(str(e))
            continue
        header = headers[path]
        if decoded.values.shape != (header.height, header.width):
            problems.append(f"{path}: decodes to {decoded.values.shape[1]}x"
                            f"{decoded.values.shape[0]} but its header says "
                            f"{header.width}x{header.height}")
            continue
        notes += mask_lib.conversions(decoded, threshold)
        mask = mask_lib.binarise(decoded.values, decoded.full_scale, threshold)
        any_defect = any_defect or bool(mask.any())
        mask = mask_lib.resize_nearest(mask, size or (merged.shape if merged is not None
                                                      else mask.shape))
        merged = mask if merged is None else merged | mask
    if len(files) > 1:
        notes.append(MERGED)
    if problems or merged is None:
        return problems, notes, False, False
    return [], notes, not any_defect, bool(merged.all())


def format_problems(category: str, problems: Sequence[str]) -> str:
    """One message for many problems: a count, then one line per file (at most MAX_LISTED)."""
    counts = collections.Counter(problems)
    lines = list(counts)[:MAX_LISTED]
    more = len(counts) - len(lines)
    head = (f"{len(counts)} problem(s) in the data of category {category!r}, found before "
            "training:")
    tail = [f"  ... and {more} more"] if more else []
    return "\n".join([head, *(f"  {line}" for line in lines), *tail])
