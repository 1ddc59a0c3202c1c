"""Extract one figure per notebook for the README: ``docs/images/NN_topic.png`` (full size)
and ``docs/images/NN_topic_thumb.png`` (240 px wide).

The figure is the first image output of a cell tagged ``thumbnail``, or else the first image
output of the notebook. Run after ``make notebooks``:  python tools/thumbnails.py
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
THUMB_WIDTH = 240


def first_image(notebook: dict) -> bytes | None:
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in cells if "thumbnail" in c.get("metadata", {}).get("tags", [])]
    for cell in tagged + cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                return base64.b64decode(data["image/png"])
    return None


def main() -> int:
    out_dir = ROOT / "docs" / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        png = first_image(json.loads(path.read_text(encoding="utf-8")))
        if png is None:
            print(f"{path.name}: no image output, skipped")
            continue
        (out_dir / f"{path.stem}.png").write_bytes(png)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        height = round(image.height * THUMB_WIDTH / image.width)
        image.resize((THUMB_WIDTH, height), Image.LANCZOS).save(out_dir / f"{path.stem}_thumb.png",
                                                                optimize=True)
        print(f"{path.name}: docs/images/{path.stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
