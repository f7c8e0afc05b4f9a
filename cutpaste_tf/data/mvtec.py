"""MVTec AD's categories: textures and objects (the grouping of the paper's tables) and the
aligned objects of Appendix A.5."""

from __future__ import annotations

MVTEC_TEXTURES: tuple[str, ...] = ("carpet", "grid", "leather", "tile", "wood")
MVTEC_OBJECTS: tuple[str, ...] = (
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
)
MVTEC_CATEGORIES: tuple[str, ...] = MVTEC_TEXTURES + MVTEC_OBJECTS
# Category -> "texture" | "object", the grouping of the paper's tables.
MVTEC_KINDS: dict[str, str] = {
    **{c: "texture" for c in MVTEC_TEXTURES},
    **{c: "object" for c in MVTEC_OBJECTS},
}
# Appendix A.5: categories whose objects sit in the same place in every image.
MVTEC_ALIGNED = ("bottle", "cable", "capsule", "metal_nut", "pill", "toothbrush", "transistor",
                 "zipper")
