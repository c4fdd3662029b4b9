"""Survey meshes and tables of known shapes for the tests: a truncated cone (a polygonal
frustum), a cylinder (a polygonal prism) and an octahedron, as OBJ, binary STL and ASCII
STL, with their closed-form volume-height curves; and the same meshes broken (a hole,
a flipped face, an edge of three faces)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

Point = tuple[float, float, float]
Face = tuple[int, int, int]


def frustum(
    r_bottom: float, r_top: float, height: float, sides: int = 96, z0: float = 0.0
) -> tuple[list[Point], list[Face]]:
    """A closed polygonal frustum (a cylinder when the radii are equal), outward faces,
    floor at ``z0``: the polygon sides, a fan on each cap."""
    ring = [
        (math.cos(2 * math.pi * k / sides), math.sin(2 * math.pi * k / sides)) for k in range(sides)
    ]
    points: list[Point] = [(r_bottom * c, r_bottom * s, z0) for c, s in ring]
    points += [(r_top * c, r_top * s, z0 + height) for c, s in ring]
    points += [(0.0, 0.0, z0), (0.0, 0.0, z0 + height)]
    bottom, top = 2 * sides, 2 * sides + 1
    faces: list[Face] = []
    for k in range(sides):
        n = (k + 1) % sides
        faces.append((bottom, n, k))  # seen from below: counterclockwise
        faces.append((top, sides + k, sides + n))
        faces.append((k, n, sides + n))
        faces.append((k, sides + n, sides + k))
    return points, faces


def frustum_volume(r_bottom: float, r_top: float, height: float, h: float, sides: int) -> float:
    """V(h) of the polygonal frustum: k/3 h (r0^2 + r0 r + r^2), k the polygon's area
    over r^2 (n/2 sin(2 pi/n); pi for a circle)."""
    k = sides / 2.0 * math.sin(2.0 * math.pi / sides)
    r = r_bottom + (r_top - r_bottom) * h / height
    return k * h / 3.0 * (r_bottom**2 + r_bottom * r + r**2)


def frustum_area(r_bottom: float, r_top: float, height: float, h: float, sides: int) -> float:
    k = sides / 2.0 * math.sin(2.0 * math.pi / sides)
    return k * (r_bottom + (r_top - r_bottom) * h / height) ** 2


def octahedron(a: float) -> tuple[list[Point], list[Face]]:
    """Vertices (+-a, 0, 0), (0, +-a, 0), (0, 0, +-a); outward faces."""
    px, nx, py, ny, pz, nz = 0, 1, 2, 3, 4, 5
    points: list[Point] = [(a, 0, 0), (-a, 0, 0), (0, a, 0), (0, -a, 0), (0, 0, a), (0, 0, -a)]
    faces: list[Face] = [
        (px, py, pz), (py, nx, pz), (nx, ny, pz), (ny, px, pz),
        (py, px, nz), (nx, py, nz), (ny, nx, nz), (px, ny, nz),
    ]  # fmt: skip
    return points, faces


def octahedron_volume(a: float, h: float) -> float:
    """Volume below h above its bottom vertex (z = -a + h): sections are squares of
    half-diagonal a - |z|, area 2 (a - |z|)^2."""
    z = -a + h
    if z <= 0.0:
        return 2.0 * (a + z) ** 3 / 3.0
    return 4.0 * a**3 / 3.0 - 2.0 * (a - z) ** 3 / 3.0


def obj(points: Sequence[Point], faces: Sequence[Face]) -> bytes:
    lines = ["# a test survey", "o stope"]
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in points]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return ("\n".join(lines) + "\n").encode()


def stl_binary(points: Sequence[Point], faces: Sequence[Face]) -> bytes:
    out = bytearray(b"solid-looking header of a binary file".ljust(80, b" "))
    out += struct.pack("<I", len(faces))
    for face in faces:
        out += struct.pack("<3f", 0.0, 0.0, 0.0)
        for i in face:
            out += struct.pack("<3f", *points[i])
        out += struct.pack("<H", 0)
    return bytes(out)


def stl_ascii(points: Sequence[Point], faces: Sequence[Face]) -> bytes:
    lines = ["solid stope"]
    for face in faces:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {points[i][0]!r} {points[i][1]!r} {points[i][2]!r}" for i in face]
        lines += ["    endloop", "  endfacet"]
    lines.append("endsolid stope")
    return ("\n".join(lines) + "\n").encode()


def table(rows: Sequence[tuple[float, float]], column: str = "height_m") -> str:
    return f"# survey office\n{column},volume_m3\n" + "".join(f"{h!r},{v!r}\n" for h, v in rows)
