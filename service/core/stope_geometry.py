"""The stope as surveyed: its volume-height curve, from a table or a sliced survey mesh.

A stope is not a prism. A cavity monitoring survey gives the void as a closed triangle
mesh, or the mine's survey office a table of cumulative void volume against elevation;
either becomes one :class:`VolumeCurve`, V(h): the void volume below the height h above
the stope floor. From it, the plan's figures follow (fill height from placed volume,
volume to a height, the plan area at a height for the rise rate, and the barricade's
head, the fill height above the floor it stands on).

The curve is piecewise linear between its knots (monotone by construction: heights
and volumes strictly increase), so the plan area at a height is the mean area of the
slice it lies in, A = dV/dh = (V_k+1 - V_k) / (h_k+1 - h_k), always above zero, and
the fill height is the exact inverse h(V). A prism (plan area A, height H) is the curve
of two knots, (0, 0) and (H, A H). Beyond the top the curve carries on with the top
slice's area, so an overfill shows rather than being hidden at the stope height.

The mesh slicer (:func:`curve_from_mesh`): the volume enclosed by a closed, consistently
oriented triangle surface is the sum of the signed volumes of the tetrahedra its
triangles make with any one apex (the divergence theorem applied to a polyhedron;
Zhang, C. & Chen, T. (2001), "Efficient feature extraction for 2D/3D objects in mesh
representation", Proc. IEEE ICIP 2001, vol. 3, pp. 935-938). The void below a plane
z = h is closed by the part of the surface below the plane plus the flat cap in the
plane; with the apex on the plane the cap's tetrahedra are flat, so V(h) is the sum
over the triangles clipped to z <= h of their signed tetrahedron volumes with the apex
at (x_c, y_c, h). Triangles wholly below the plane sum by prefix sums, since a
tetrahedron's signed volume is linear in its apex:
6 V(a, p0, p1, p2) = p0 . (p1 x p2) - a . ((p1 - p0) x (p2 - p0)).
A mesh that is not closed (an edge with one face: a hole), not a manifold (an edge with
three or more faces) or not consistently oriented (an edge two faces run the same way:
a flipped face) is refused naming the problem; a mesh oriented inwards throughout is
taken with the sign turned.

Values in, values out (numpy for the slicer); nothing here reads a clock or a file.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInput

CurveSource = Literal["prism", "table", "mesh"]
MeshFormat = Literal["stl", "obj"]

#: Most knots a stored curve holds (a table may not have more rows).
MAX_KNOTS = 4096
#: Most triangles of a survey mesh (bounds the slicer's work).
MAX_TRIANGLES = 500_000
#: Heights a mesh is sliced at: this many equal intervals, plus every vertex level
#: while the total stays within MAX_KNOTS (between vertex levels V(h) is a cubic, so
#: the linear curve's error falls with the square of the interval).
MESH_INTERVALS = 1024
#: Most (triangle, slice) crossings a slice may clip: a triangle wholly below a plane
#: costs nothing (prefix sums), one that crosses it is clipped there, so the work grows
#: with how many slices each triangle spans (a finely meshed survey: one or two each).
MAX_CROSSINGS = 50_000_000
_AREA_MAX_M2 = 1.0e8
_LENGTH_MAX_M = 1.0e4
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")

SURVEY_CODE = "survey_invalid"
MESH_NOT_CLOSED = "mesh_not_closed"
MESH_NOT_MANIFOLD = "mesh_not_manifold"
MESH_NOT_ORIENTED = "mesh_not_oriented"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class VolumeCurve:
    """Cumulative void volume against height above the stope floor (module docstring).

    ``heights_m`` and ``volumes_m3`` start at (0, 0) and strictly increase;
    ``source`` says where the curve came from (``prism``, ``table``, ``mesh``);
    ``floor_elevation_m`` the floor's elevation where the survey gave one.
    """

    heights_m: tuple[float, ...]
    volumes_m3: tuple[float, ...]
    source: CurveSource = "prism"
    floor_elevation_m: float | None = None

    def __post_init__(self) -> None:
        h, v = self.heights_m, self.volumes_m3
        if len(h) != len(v):
            raise InvalidInput("curve", "a volume-height curve needs a volume for every height")
        if not 2 <= len(h) <= MAX_KNOTS:
            raise InvalidInput(
                "curve", f"a volume-height curve has 2 to {MAX_KNOTS} points, got {len(h)}"
            )
        if not all(math.isfinite(x) for x in (*h, *v)):
            raise InvalidInput("curve", "the curve's heights and volumes must be finite")
        if h[0] != 0.0 or v[0] != 0.0:
            raise InvalidInput("curve", "a volume-height curve starts at the floor: (0 m, 0 m3)")
        for k in range(1, len(h)):
            if h[k] <= h[k - 1] or v[k] <= v[k - 1]:
                raise InvalidInput(
                    "curve",
                    f"point {k} ({h[k]:.6g} m, {v[k]:.6g} m3): heights and volumes must "
                    "strictly increase",
                )
        if h[-1] > _LENGTH_MAX_M or v[-1] / h[-1] > _AREA_MAX_M2:
            raise InvalidInput("curve", "the curve is larger than any stope")
        if self.source not in ("prism", "table", "mesh"):
            raise InvalidInput("curve.source", f"unknown curve source {self.source!r}")

    @classmethod
    def prism(cls, plan_area_m2: float, height_m: float) -> VolumeCurve:
        """A prism: V = A h."""
        return cls((0.0, float(height_m)), (0.0, float(plan_area_m2) * float(height_m)))

    @property
    def height_m(self) -> float:
        """The stope's height, floor to back (the curve's top)."""
        return self.heights_m[-1]

    @property
    def volume_m3(self) -> float:
        """The void volume of the whole stope."""
        return self.volumes_m3[-1]

    @property
    def mean_area_m2(self) -> float:
        """Volume over height: the plan area of the prism of the same volume and height."""
        return self.volume_m3 / self.height_m

    def _slice(self, index: int) -> float:
        """The mean plan area of slice ``index`` (between knots index and index + 1)."""
        h, v = self.heights_m, self.volumes_m3
        return (v[index + 1] - v[index]) / (h[index + 1] - h[index])

    def volume_at_m3(self, height_m: float) -> float:
        """V(h); 0 at and below the floor, the top slice's area carried on above the top."""
        if not math.isfinite(height_m):
            raise InvalidInput("height_m", f"a height must be finite, got {height_m!r}")
        if height_m <= 0.0:
            return 0.0
        h, v = self.heights_m, self.volumes_m3
        k = min(bisect.bisect_right(h, height_m) - 1, len(h) - 2)
        return v[k] + (height_m - h[k]) * self._slice(k)

    def height_at_m(self, volume_m3: float) -> float:
        """h(V), the fill height of a placed volume (the inverse of :meth:`volume_at_m3`)."""
        if not math.isfinite(volume_m3):
            raise InvalidInput("volume_m3", f"a volume must be finite, got {volume_m3!r}")
        if volume_m3 <= 0.0:
            return 0.0
        h, v = self.heights_m, self.volumes_m3
        k = min(bisect.bisect_right(v, volume_m3) - 1, len(v) - 2)
        return h[k] + (volume_m3 - v[k]) / self._slice(k)

    def area_at_m2(self, height_m: float) -> float:
        """The plan area at a height, dV/dh: the slice the fill rises into there (at a
        knot the slice above it; below the floor the first, above the top the last)."""
        if not math.isfinite(height_m):
            raise InvalidInput("height_m", f"a height must be finite, got {height_m!r}")
        k = bisect.bisect_right(self.heights_m, height_m) - 1
        return self._slice(min(max(k, 0), len(self.heights_m) - 2))

    def smallest_area_m2(self, low_m: float, high_m: float) -> float:
        """The smallest plan area between two heights (the narrowest slice met)."""
        if high_m < low_m:
            low_m, high_m = high_m, low_m
        h = self.heights_m
        first = min(max(bisect.bisect_right(h, low_m) - 1, 0), len(h) - 2)
        last = min(max(bisect.bisect_left(h, high_m) - 1, first), len(h) - 2)
        return min(self._slice(k) for k in range(first, last + 1))

    def sampled(self, points: int = 41) -> list[dict[str, float]]:
        """The curve at ``points`` equally spaced heights, floor to top (height, volume,
        plan area): what an answer shows of it."""
        if points < 2:
            raise InvalidInput("points", "a sampled curve needs at least 2 points")
        out = []
        for i in range(points):
            height = self.height_m * i / (points - 1)
            out.append(
                {
                    "height_m": height,
                    "volume_m3": self.volume_at_m3(height),
                    "area_m2": self.area_at_m2(min(height, self.heights_m[-2])),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "heights_m": list(self.heights_m),
            "volumes_m3": list(self.volumes_m3),
            "source": self.source,
            "floor_elevation_m": self.floor_elevation_m,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VolumeCurve:
        floor = data.get("floor_elevation_m")
        return cls(
            tuple(float(x) for x in data["heights_m"]),
            tuple(float(x) for x in data["volumes_m3"]),
            data.get("source", "table"),
            None if floor is None else float(floor),
        )


# --- a volume-height table --------------------------------------------------------------

_HEIGHT_COLUMNS = ("height_m", "elevation_m")


def curve_from_table(text: str) -> VolumeCurve:
    """A curve from a CSV table: a header naming ``height_m`` (height above the floor)
    or ``elevation_m``, and ``volume_m3`` (cumulative void volume below it); one row per
    point, in rising order, the first the floor (volume 0). Heights are taken from the
    first row (an elevation column gives the floor's elevation). Blank lines and lines
    starting with ``#`` are skipped; other columns are ignored. A bad table is a 422
    (``survey_invalid``, field ``survey.csv``) naming the line and the column."""
    if not isinstance(text, str):
        raise InvalidInput("survey.csv", "the table must be text")

    def bad(line: int, column: str, message: str) -> InvalidInput:
        return InvalidInput(
            "survey.csv",
            f"line {line}, {column}: {message}" if column else f"line {line}: {message}",
            code=SURVEY_CODE,
            line=line,
            column=column or None,
        )

    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header: list[str] | None = None
    height_col = volume_col = -1
    height_name = ""
    rows: list[tuple[int, float, float]] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                found = [c for c in _HEIGHT_COLUMNS if c in header]
                if len(found) != 1 or "volume_m3" not in header:
                    raise bad(
                        line,
                        "",
                        "the header names one of height_m or elevation_m, and volume_m3 "
                        f"(found {', '.join(header)[:200]})",
                    )
                height_name = found[0]
                height_col, volume_col = header.index(height_name), header.index("volume_m3")
                continue
            if len(rows) >= MAX_KNOTS:
                raise bad(line, "", f"a table has at most {MAX_KNOTS} rows")
            values: list[float] = []
            for name, col in ((height_name, height_col), ("volume_m3", volume_col)):
                cell = record[col].strip() if col < len(record) else ""
                if not _NUMBER.match(cell):
                    raise bad(line, name, f"{cell[:40]!r} is not a plain decimal number")
                values.append(float(cell))
            if not all(math.isfinite(x) for x in values):
                raise bad(line, "", "numbers must be finite")
            rows.append((line, values[0], values[1]))
    except csv.Error as err:
        raise bad(reader.line_num, "", f"not readable as CSV ({err})") from err
    if header is None:
        raise InvalidInput("survey.csv", "the table is empty", code=SURVEY_CODE)
    if len(rows) < 2:
        raise InvalidInput(
            "survey.csv", "a table needs at least two rows: the floor and a height above it",
            code=SURVEY_CODE,
        )  # fmt: skip
    first_line, base, first_volume = rows[0]
    if first_volume != 0.0:
        raise bad(first_line, "volume_m3", "the first row is the floor: its volume is 0")
    for (_, h0, v0), (line, h1, v1) in itertools.pairwise(rows):
        if h1 <= h0:
            raise bad(line, height_name, f"{h1:g} does not rise above the row before ({h0:g})")
        if v1 <= v0:
            raise bad(
                line, "volume_m3", f"{v1:g} m3 does not rise above the row before ({v0:g} m3)"
            )
    heights = tuple(h - base for _, h, _ in rows)
    volumes = tuple(v for _, _, v in rows)
    floor = base if height_name == "elevation_m" else None
    try:
        return VolumeCurve(heights, volumes, "table", floor)
    except InvalidInput as err:
        raise InvalidInput("survey.csv", err.detail, code=SURVEY_CODE) from err


# --- a survey mesh ----------------------------------------------------------------------


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh: vertex coordinates (m, z up) and faces (vertex indices, each
    triangle's vertices in the order its outward side sees them counterclockwise)."""

    vertices: FloatArray
    faces: IntArray


def _mesh_error(message: str, code: str = SURVEY_CODE, **extra: Any) -> InvalidInput:
    return InvalidInput("survey.mesh", message, code=code, **extra)


def parse_stl(data: bytes) -> FloatArray:
    """The triangles of an STL file, binary or ASCII, as an array (n, 3, 3). The facet
    normals are not used: orientation is the vertices' order (the STL convention)."""
    if len(data) >= 84:
        count = int.from_bytes(data[80:84], "little")
        if len(data) == 84 + 50 * count:
            record = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])
            if count > MAX_TRIANGLES:
                raise _mesh_error(f"the mesh has {count} triangles; at most {MAX_TRIANGLES}")
            binary = np.frombuffer(data, dtype=record, count=count, offset=84)["v"]
            return np.asarray(binary, dtype=np.float64)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        raise _mesh_error(
            "not an STL file: not binary STL (84 + 50 n bytes) and not ASCII text"
        ) from err
    if not text.lstrip().lower().startswith("solid"):
        raise _mesh_error("not an STL file: ASCII STL starts with 'solid'")
    triangles: list[list[float]] = []
    in_facet = False
    corners: list[float] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words:
            continue
        keyword = words[0].lower()
        if keyword == "facet":
            if in_facet:
                raise _mesh_error(f"line {number}: a facet begins inside another", line=number)
            in_facet, corners = True, []
        elif keyword == "vertex":
            if not in_facet or len(words) != 4:
                raise _mesh_error(f"line {number}: a vertex is 'vertex x y z' in a facet",
                                  line=number)  # fmt: skip
            try:
                corners.extend(float(w) for w in words[1:])
            except ValueError as err:
                raise _mesh_error(f"line {number}: a coordinate is not a number",
                                  line=number) from err  # fmt: skip
        elif keyword == "endfacet":
            if not in_facet or len(corners) != 9:
                raise _mesh_error(f"line {number}: a facet has exactly three vertices",
                                  line=number)  # fmt: skip
            triangles.append(corners)
            in_facet = False
            if len(triangles) > MAX_TRIANGLES:
                raise _mesh_error(f"the mesh has more than {MAX_TRIANGLES} triangles")
    if in_facet:
        raise _mesh_error("the file ends inside a facet")
    return np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 3)


def parse_obj(data: bytes) -> Mesh:
    """The vertices and faces of a Wavefront OBJ file (``v`` and ``f`` lines; ``f``
    takes ``i``, ``i/t``, ``i//n`` or ``i/t/n``, 1-based or negative; a polygon becomes
    a fan of triangles from its first vertex, which keeps its flux for any planar
    polygon). Other statements are ignored."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _mesh_error("an OBJ file is text (UTF-8)") from err
    vertices: list[tuple[float, float, float]] = []
    faces: list[tuple[int, int, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "v":
            if len(words) < 4:
                raise _mesh_error(f"line {number}: a vertex is 'v x y z'", line=number)
            try:
                x, y, z = (float(w) for w in words[1:4])
            except ValueError as err:
                raise _mesh_error(f"line {number}: a coordinate is not a number",
                                  line=number) from err  # fmt: skip
            vertices.append((x, y, z))
        elif words[0] == "f":
            if len(words) < 4:
                raise _mesh_error(f"line {number}: a face has at least three vertices",
                                  line=number)  # fmt: skip
            corners: list[int] = []
            for word in words[1:]:
                try:
                    index = int(word.split("/", 1)[0])
                except ValueError as err:
                    raise _mesh_error(f"line {number}: {word[:20]!r} is not a vertex index",
                                      line=number) from err  # fmt: skip
                resolved = index - 1 if index > 0 else len(vertices) + index
                if index == 0 or not 0 <= resolved < len(vertices):
                    raise _mesh_error(f"line {number}: vertex {index} is not defined before it",
                                      line=number)  # fmt: skip
                corners.append(resolved)
            for k in range(1, len(corners) - 1):
                faces.append((corners[0], corners[k], corners[k + 1]))
            if len(faces) > MAX_TRIANGLES:
                raise _mesh_error(f"the mesh has more than {MAX_TRIANGLES} triangles")
    return Mesh(
        np.asarray(vertices, dtype=np.float64).reshape(-1, 3),
        np.asarray(faces, dtype=np.int64).reshape(-1, 3),
    )


def weld(triangles: FloatArray) -> Mesh:
    """Shared vertices of a triangle soup (an STL file repeats each vertex per face):
    vertices with equal coordinates are one vertex."""
    flat = triangles.reshape(-1, 3)
    vertices, inverse = np.unique(flat, axis=0, return_inverse=True)
    return Mesh(vertices.astype(np.float64), inverse.reshape(-1, 3).astype(np.int64))


@dataclass(frozen=True)
class MeshCheck:
    """What :func:`check_mesh` found: the faces kept (degenerate ones dropped), whether
    the surface faced inwards (its volumes were taken with the sign turned)."""

    mesh: Mesh
    dropped_degenerate: int
    inward: bool


def _point(vertices: FloatArray, index: int) -> str:
    x, y, z = (float(c) for c in vertices[index])
    return f"({x:.3f}, {y:.3f}, {z:.3f})"


def check_mesh(mesh: Mesh) -> MeshCheck:
    """Refuse a mesh that is not a closed, consistently oriented 2-manifold surface,
    naming what is wrong and where (module docstring). Faces with a repeated vertex
    enclose nothing and are dropped."""
    faces, vertices = mesh.faces, mesh.vertices
    if len(faces) == 0 or len(vertices) < 4:
        raise _mesh_error("the mesh has no faces")
    if not np.all(np.isfinite(vertices)):
        raise _mesh_error("the mesh has a coordinate that is not a finite number")
    degenerate = (
        (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 2] == faces[:, 0])
    )
    kept = faces[~degenerate]
    if len(kept) < 4:
        raise _mesh_error("the mesh has fewer than four proper triangles: it encloses nothing")
    n = np.int64(len(vertices))
    tails = kept.reshape(-1)
    heads = np.roll(kept, -1, axis=1).reshape(-1)
    directed = tails * n + heads
    undirected = np.minimum(tails, heads) * n + np.maximum(tails, heads)
    keys, counts = np.unique(undirected, return_counts=True)
    open_edges = keys[counts == 1]
    if len(open_edges):
        a, b = divmod(int(open_edges[0]), int(n))
        raise _mesh_error(
            f"the mesh is not closed: {len(open_edges)} edge(s) belong to one face only (a "
            f"hole), e.g. the edge {_point(vertices, a)} - {_point(vertices, b)}; a survey "
            "mesh must be watertight",
            code=MESH_NOT_CLOSED,
            open_edges=len(open_edges),
        )
    crowded = keys[counts > 2]
    if len(crowded):
        a, b = divmod(int(crowded[0]), int(n))
        raise _mesh_error(
            f"the mesh is not a manifold: {len(crowded)} edge(s) are shared by three or more "
            f"faces, e.g. the edge {_point(vertices, a)} - {_point(vertices, b)}",
            code=MESH_NOT_MANIFOLD,
        )
    _, first, repeats = np.unique(directed, return_index=True, return_counts=True)
    twice = first[repeats > 1]
    if len(twice):
        # Every edge has two faces; one run the same way by both means one of them is
        # flipped. Name the face with the most such edges (a single flipped face has
        # all three).
        face_of_edge = np.repeat(np.arange(len(faces))[~degenerate], 3)
        same_way = np.isin(directed, directed[twice])
        per_face = np.bincount(face_of_edge[same_way], minlength=len(faces))
        worst = int(np.argmax(per_face))
        corners = ", ".join(_point(vertices, int(i)) for i in faces[worst])
        raise _mesh_error(
            f"the mesh is not consistently oriented: {len(twice)} edge(s) are run the same "
            f"way by both their faces (a flipped face), e.g. face {worst + 1} of the file "
            f"({corners}); every face's vertices go counterclockwise seen from outside",
            code=MESH_NOT_ORIENTED,
            face=worst + 1,
        )
    volume = _slice_volumes(vertices[kept], np.asarray([np.inf]))[0]
    if not math.isfinite(volume) or volume == 0.0:
        raise _mesh_error("the mesh encloses no volume")
    return MeshCheck(Mesh(vertices, kept), int(degenerate.sum()), inward=volume < 0.0)


def _slice_volumes(triangles: FloatArray, heights: FloatArray) -> FloatArray:
    """V(h) of a closed, oriented triangle surface below each of ``heights`` (sorted
    ascending; ``inf`` for the whole volume): module docstring."""
    tri = np.array(triangles, dtype=np.float64, copy=True)
    centre = tri.reshape(-1, 3).mean(axis=0)
    tri[:, :, 0] -= centre[0]  # the apex on the axis x = y = 0: smaller products
    tri[:, :, 1] -= centre[1]
    p0, p1, p2 = tri[:, 0], tri[:, 1], tri[:, 2]
    det = np.einsum("ij,ij->i", p0, np.cross(p1, p2))
    normal_z = np.cross(p1 - p0, p2 - p0)[:, 2]
    z = tri[:, :, 2]
    zmin, zmax = z.min(axis=1), z.max(axis=1)
    order = np.argsort(zmax, kind="stable")
    zmax_sorted = zmax[order]
    cum_det = np.concatenate(([0.0], np.cumsum(det[order])))
    cum_nz = np.concatenate(([0.0], np.cumsum(normal_z[order])))
    out = np.empty(len(heights), dtype=np.float64)
    for i, h in enumerate(heights):
        below = int(np.searchsorted(zmax_sorted, h, side="right"))
        if not math.isfinite(h):
            out[i] = cum_det[below] / 6.0
            continue
        # Apex (0, 0, h): 6 V = det - h n_z for every triangle wholly below the plane.
        total = (cum_det[below] - h * cum_nz[below]) / 6.0
        crossing = np.nonzero((zmin < h) & (zmax > h))[0]
        if len(crossing):
            total += _clipped_volume(tri[crossing], h)
        out[i] = total
    return out


def _tetra6(a: FloatArray, b: FloatArray, c: FloatArray, h: float) -> FloatArray:
    """6 x the signed volume of the tetrahedra (apex (0, 0, h), a, b, c), row by row."""
    apex = np.array([0.0, 0.0, h])
    return np.asarray(np.einsum("ij,ij->i", a - apex, np.cross(b - apex, c - apex)))


def _clipped_volume(tri: FloatArray, h: float) -> float:
    """The signed volume of triangles that cross z = h, clipped to z <= h, with the apex
    on the plane. Each is turned (cyclically: the orientation is kept) so that its odd
    vertex comes first (one below) or last (two below)."""
    z = tri[:, :, 2]
    low = z <= h
    count = low.sum(axis=1)
    one = count == 1
    odd = np.where(one[:, None], low, ~low)
    r = np.argmax(odd, axis=1)
    start = np.where(one, r, (r + 1) % 3)
    idx = (start[:, None] + np.arange(3)[None, :]) % 3
    t = np.take_along_axis(tri, idx[:, :, None], axis=1)
    a, b, c = t[:, 0], t[:, 1], t[:, 2]

    def cut(p: FloatArray, q: FloatArray) -> FloatArray:
        s = (h - p[:, 2]) / (q[:, 2] - p[:, 2])
        return np.asarray(p + (q - p) * s[:, None])

    total = 0.0
    if one.any():  # a below: the triangle (a, a-b cut, a-c cut)
        a1, b1, c1 = a[one], b[one], c[one]
        total += float(_tetra6(a1, cut(a1, b1), cut(a1, c1), h).sum())
    two = ~one
    if two.any():  # a, b below, c above: the quad (a, b, b-c cut, c-a cut)
        a2, b2, c2 = a[two], b[two], c[two]
        pb, pa = cut(b2, c2), cut(a2, c2)
        total += float(_tetra6(a2, b2, pb, h).sum() + _tetra6(a2, pb, pa, h).sum())
    return total / 6.0


def curve_from_mesh(data: bytes, fmt: MeshFormat) -> tuple[VolumeCurve, MeshCheck]:
    """A stope's curve from its survey mesh (STL, binary or ASCII, or OBJ; metres, z
    up): checked (:func:`check_mesh`), sliced at :data:`MESH_INTERVALS` equal intervals
    plus its vertex levels (module docstring), the floor at the lowest vertex."""
    if fmt == "stl":
        mesh = weld(parse_stl(data))
    elif fmt == "obj":
        mesh = parse_obj(data)
    else:
        raise InvalidInput("survey.format", f"a mesh is 'stl' or 'obj', got {fmt!r}")
    checked = check_mesh(mesh)
    triangles = checked.mesh.vertices[checked.mesh.faces]
    floor = float(triangles[:, :, 2].min())
    top = float(triangles[:, :, 2].max())
    height = top - floor
    if not height > 0.0:
        raise _mesh_error("the mesh has no height")
    grid = floor + height * np.arange(MESH_INTERVALS + 1) / MESH_INTERVALS
    levels = np.unique(triangles[:, :, 2])
    if len(levels) + len(grid) <= MAX_KNOTS:
        grid = np.union1d(grid, levels)
    grid[0], grid[-1] = floor, top
    z = triangles[:, :, 2]
    spans = np.searchsorted(grid, z.max(axis=1), "left") - np.searchsorted(grid, z.min(axis=1))
    crossings = int(np.maximum(spans, 0).sum())
    if crossings > MAX_CROSSINGS:
        raise _mesh_error(
            f"the mesh's triangles cross {crossings} of its {len(grid)} slicing planes in all "
            f"(at most {MAX_CROSSINGS}): its faces are long in height; remesh it with faces "
            "no taller than a few metres"
        )
    volumes = _slice_volumes(triangles, grid)
    if checked.inward:
        volumes = -volumes
    heights = grid - floor
    # Knots closer than the float noise of the volumes are merged (a vertex level a
    # hair from a grid height adds nothing but noise to the slopes).
    keep_h, keep_v = [0.0], [0.0]
    tolerance = 1e-12 * float(volumes[-1])
    for k in range(1, len(heights)):
        last = k == len(heights) - 1
        if volumes[k] - keep_v[-1] > tolerance and heights[k] - keep_h[-1] > 1e-9 * height:
            keep_h.append(float(heights[k]))
            keep_v.append(float(volumes[k]))
        elif last:
            keep_h[-1], keep_v[-1] = float(heights[k]), float(volumes[k])
    if len(keep_h) < 2:
        raise _mesh_error("the mesh encloses no volume")
    return VolumeCurve(tuple(keep_h), tuple(keep_v), "mesh", floor), checked


def tetra_volume(points: Sequence[Sequence[float]]) -> float:
    """The signed volume of one tetrahedron (apex first), for checks and tests."""
    a, b, c, d = (np.asarray(p, dtype=np.float64) for p in points)
    return float(np.dot(b - a, np.cross(c - a, d - a)) / 6.0)
