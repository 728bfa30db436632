"""The canary pictures of an image audit: a few mislabeled canaries as images, with whether the target
recognised them — ``canary_images.json`` (0600, confidential like ``audit.json``: it shows which canaries the
target trained on), read only by the HTML report (:mod:`dpaudit.reports.canary_images`); never in
``summary.json``, ``audit.json`` or anything public.

Which canaries are shown is fixed before looking at any outcome: the first :data:`SHOWN_PER_SIDE` IN and the
first :data:`SHOWN_PER_SIDE` OUT canaries by population column. "Recognised": the target's top class is the
canary's (wrong) training label.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from dpaudit.rundir import RunDir

FILE = "canary_images.json"
SHOWN_PER_SIDE = 4


def png_base64(image: np.ndarray) -> str:
    """A uint8 (H, W, 1|3) image as base64 PNG text."""
    from PIL import Image

    arr = np.asarray(image, dtype=np.uint8)
    pil = Image.fromarray(arr[..., 0], "L") if arr.shape[-1] == 1 else Image.fromarray(arr, "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def canary_picture_rows(pop, membership: np.ndarray, target_logits: np.ndarray) -> list[dict]:
    """The shown canaries (see the module docstring): png, labels, IN/OUT, the target's prediction."""
    canaries = pop.canaries
    if canaries is None or canaries.pixels is None or canaries.kind != "mislabeled":
        return []
    cols = pop.canary_index
    included = np.asarray(membership[0], dtype=bool)[cols]
    shown = np.concatenate([np.flatnonzero(included)[:SHOWN_PER_SIDE], np.flatnonzero(~included)[:SHOWN_PER_SIDE]])
    names = pop.ds.label_names
    rows = []
    for j in shown:
        predicted = int(np.argmax(target_logits[cols[j]]))
        rows.append({"png": png_base64(canaries.pixels[j]), "label": str(names[canaries.labels[j]]),
                     "original": str(names[canaries.original_labels[j]]), "included": bool(included[j]),
                     "predicted": str(names[predicted]), "recognised": predicted == int(canaries.labels[j])})
    return rows


def canary_images_stage(run: RunDir, pop, membership: np.ndarray, target_logits: np.ndarray) -> None:
    """Write ``canary_images.json`` for an image audit with mislabeled canaries (nothing otherwise)."""
    rows = canary_picture_rows(pop, membership, target_logits)
    if rows:
        run.write_json(FILE, {"canaries": rows})
