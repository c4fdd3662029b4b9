"""The stope as surveyed: the volume-height curve, a survey table, the mesh slicer, and
the meshes it refuses; checked against the closed-form curves of known shapes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.fill_plan import FillPlan, Stage, StopeGeometry
from service.core.stope_geometry import (
    MESH_NOT_CLOSED,
    MESH_NOT_MANIFOLD,
    MESH_NOT_ORIENTED,
    VolumeCurve,
    curve_from_mesh,
    curve_from_table,
)
from service.errors import InvalidInput
from tests.meshes import (
    frustum,
    frustum_area,
    frustum_volume,
    obj,
    octahedron,
    octahedron_volume,
    stl_ascii,
    stl_binary,
    table,
)

R0, R1, H, SIDES = 5.0, 10.0, 20.0, 96


# --- the curve --------------------------------------------------------------------------


def test_a_prism_is_v_equals_a_h() -> None:
    curve = VolumeCurve.prism(300.0, 30.0)
    assert curve.volume_at_m3(5.0) == pytest.approx(1500.0)
    assert curve.height_at_m(1500.0) == pytest.approx(5.0)
    assert curve.area_at_m2(12.0) == pytest.approx(300.0)
    assert curve.volume_at_m3(-1.0) == 0.0 and curve.height_at_m(-1.0) == 0.0
    # Above the top the top slice carries on: an overfill shows.
    assert curve.height_at_m(9300.0) == pytest.approx(31.0)


def test_the_curve_interpolates_between_its_knots_and_its_area_is_the_slice() -> None:
    curve = VolumeCurve((0.0, 2.0, 5.0), (0.0, 100.0, 400.0), "table")
    assert curve.volume_at_m3(1.0) == pytest.approx(50.0)
    assert curve.volume_at_m3(3.5) == pytest.approx(250.0)
    assert curve.area_at_m2(1.0) == pytest.approx(50.0)
    assert curve.area_at_m2(2.0) == pytest.approx(100.0)  # at a knot: the slice above
    assert curve.area_at_m2(9.0) == pytest.approx(100.0)
    assert curve.height_at_m(250.0) == pytest.approx(3.5)
    assert curve.smallest_area_m2(0.5, 4.0) == pytest.approx(50.0)
    assert curve.smallest_area_m2(2.0, 4.0) == pytest.approx(100.0)
    assert curve.mean_area_m2 == pytest.approx(80.0)
    sampled = curve.sampled(6)
    assert [p["height_m"] for p in sampled] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert sampled[-1]["volume_m3"] == pytest.approx(400.0)
    assert VolumeCurve.from_dict(curve.to_dict()) == curve


@pytest.mark.parametrize(
    ("heights", "volumes"),
    [
        ((0.0,), (0.0,)),
        ((1.0, 2.0), (0.0, 5.0)),  # not from the floor
        ((0.0, 2.0, 2.0), (0.0, 5.0, 9.0)),
        ((0.0, 2.0, 3.0), (0.0, 5.0, 5.0)),  # a slice of no area
        ((0.0, math.inf), (0.0, 5.0)),
    ],
)
def test_a_curve_that_does_not_rise_from_the_floor_is_refused(
    heights: tuple[float, ...], volumes: tuple[float, ...]
) -> None:
    with pytest.raises(InvalidInput) as err:
        VolumeCurve(heights, volumes)
    assert err.value.field == "curve"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.01, 50.0), st.floats(0.01, 5000.0)), min_size=1, max_size=40),
    st.floats(0.0, 1.0),
)
def test_height_and_volume_are_inverse_and_monotone(
    steps: list[tuple[float, float]], where: float
) -> None:
    heights, volumes = [0.0], [0.0]
    for dh, dv in steps:
        heights.append(heights[-1] + dh)
        volumes.append(volumes[-1] + dv)
    curve = VolumeCurve(tuple(heights), tuple(volumes), "table")
    h = where * curve.height_m
    v = curve.volume_at_m3(h)
    assert curve.height_at_m(v) == pytest.approx(h, rel=1e-9, abs=1e-9)
    assert curve.volume_at_m3(h * 0.999) <= v + 1e-9
    assert curve.area_at_m2(h) > 0.0


# --- a survey table ---------------------------------------------------------------------


def test_a_table_of_a_cylinder_gives_its_volumes_and_heights() -> None:
    area = math.pi * 6.0**2
    rows = [(float(h), area * h) for h in range(0, 31)]
    curve = curve_from_table(table(rows))
    assert curve.source == "table" and curve.floor_elevation_m is None
    assert curve.height_m == 30.0
    for h in (0.5, 7.25, 29.9):
        assert curve.volume_at_m3(h) == pytest.approx(area * h, rel=1e-12)
        assert curve.height_at_m(area * h) == pytest.approx(h, rel=1e-12)
        assert curve.area_at_m2(h) == pytest.approx(area, rel=1e-12)


def test_a_table_of_a_truncated_cone_by_elevation_matches_the_closed_form() -> None:
    # The survey office's table at 0.5 m, by elevation (floor at 812.0 m).
    rows = [(812.0 + 0.5 * i, frustum_volume(R0, R1, H, 0.5 * i, 10**6)) for i in range(0, 41)]
    curve = curve_from_table(table(rows, column="elevation_m"))
    assert curve.floor_elevation_m == pytest.approx(812.0)
    for h in (0.25, 3.3, 10.0, 19.75):
        exact = frustum_volume(R0, R1, H, h, 10**6)
        # Linear between rows 0.5 m apart: error <= V'' dh^2 / 8.
        bound = 2 * math.pi * R1 * (R1 - R0) / H * 0.5**2 / 8
        assert abs(curve.volume_at_m3(h) - exact) <= bound
        assert curve.height_at_m(exact) == pytest.approx(h, abs=0.01)
        assert curve.area_at_m2(h) == pytest.approx(frustum_area(R0, R1, H, h, 10**6), rel=0.02)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("height_m,volume_m3\n0,0\n", "two rows"),
        ("depth,volume_m3\n0,0\n1,5\n", "header"),
        ("height_m,elevation_m,volume_m3\n0,0,0\n1,1,5\n", "header"),
        ("height_m,volume_m3\n0,3\n1,5\n", "line 2, volume_m3"),
        ("height_m,volume_m3\n0,0\n1,5\n1,7\n", "line 4, height_m"),
        ("height_m,volume_m3\n0,0\n1,5\n2,5\n", "line 4, volume_m3"),
        ("height_m,volume_m3\n0,0\n1,1_000\n", "line 3, volume_m3"),
        ("height_m,volume_m3\n0,0\n1,nan\n", "line 3, volume_m3"),
        ("height_m,volume_m3\n0,0\n1,\n", "line 3, volume_m3"),
        ('height_m,volume_m3\n0,0\n"1,5\n', "CSV"),
        ("", "empty"),
    ],
)
def test_a_bad_table_is_refused_naming_the_line_and_column(text: str, where: str) -> None:
    with pytest.raises(InvalidInput) as err:
        curve_from_table(text)
    assert err.value.field == "survey.csv"
    assert err.value.code == "survey_invalid"
    assert where in err.value.detail, err.value.detail


# --- the mesh slicer --------------------------------------------------------------------


@pytest.mark.parametrize("writer", [obj, stl_binary, stl_ascii])
def test_a_truncated_cone_mesh_slices_into_its_closed_form_curve(writer: object) -> None:
    points, faces = frustum(R0, R1, H, SIDES, z0=-612.5)
    fmt = "obj" if writer is obj else "stl"
    curve, checked = curve_from_mesh(writer(points, faces), fmt)  # type: ignore[operator]
    assert curve.source == "mesh" and not checked.inward
    assert curve.floor_elevation_m == pytest.approx(-612.5)
    assert curve.height_m == pytest.approx(H, rel=1e-6)
    rel = 1e-9 if writer is not stl_binary else 1e-5  # binary STL stores float32
    for h, v in zip(curve.heights_m, curve.volumes_m3, strict=True):  # exact at the knots
        assert v == pytest.approx(frustum_volume(R0, R1, H, h, SIDES), rel=rel, abs=1e-6)
    for h in (0.31, 4.44, 12.5, 19.99):
        assert curve.volume_at_m3(h) == pytest.approx(frustum_volume(R0, R1, H, h, SIDES), rel=1e-4)
        assert curve.area_at_m2(h) == pytest.approx(frustum_area(R0, R1, H, h, SIDES), rel=5e-3)
        v = frustum_volume(R0, R1, H, h, SIDES)
        assert curve.height_at_m(v) == pytest.approx(h, abs=1e-3)


def test_a_cylinder_mesh_is_a_prism() -> None:
    points, faces = frustum(4.0, 4.0, 25.0, 64)
    curve, _ = curve_from_mesh(stl_binary(points, faces), "stl")
    area = 32.0 * math.sin(2 * math.pi / 64) * 16.0
    for h in (0.1, 12.0, 24.9):
        assert curve.volume_at_m3(h) == pytest.approx(area * h, rel=1e-6)
        assert curve.area_at_m2(h) == pytest.approx(area, rel=1e-6)


def test_an_octahedron_mesh_is_exact_at_every_knot() -> None:
    points, faces = octahedron(3.0)
    curve, _ = curve_from_mesh(obj(points, faces), "obj")
    assert curve.volume_m3 == pytest.approx(4.0 * 27.0 / 3.0, rel=1e-12)
    for h, v in zip(curve.heights_m, curve.volumes_m3, strict=True):
        assert v == pytest.approx(octahedron_volume(3.0, h), rel=1e-9, abs=1e-12)


def test_a_mesh_oriented_inwards_throughout_is_taken_outwards() -> None:
    points, faces = octahedron(2.0)
    inward = [(a, c, b) for a, b, c in faces]
    curve, checked = curve_from_mesh(obj(points, inward), "obj")
    assert checked.inward
    assert curve.volume_m3 == pytest.approx(4.0 * 8.0 / 3.0)


def test_an_obj_polygon_is_a_fan_and_negative_indices_count_back() -> None:
    cube = [
        "v 0 0 0", "v 2 0 0", "v 2 3 0", "v 0 3 0", "v 0 0 5", "v 2 0 5", "v 2 3 5", "v 0 3 5",
        "f 1 4 3 2", "f 5/1 6/1 7/1 8/1", "f 1//1 2//1 6//1 5//1", "f 2 3 7 6",
        "f -5 -1 -2 -6",  # 3 4 8 7 counted back from the last vertex
        "f 4 1 5 8",
    ]  # fmt: skip
    curve, _ = curve_from_mesh("\n".join(cube).encode(), "obj")
    assert curve.volume_at_m3(2.5) == pytest.approx(15.0)
    assert curve.area_at_m2(1.0) == pytest.approx(6.0)


def test_a_mesh_with_a_hole_is_refused_naming_it() -> None:
    points, faces = frustum(R0, R1, H, 32)
    with pytest.raises(InvalidInput) as err:
        curve_from_mesh(stl_binary(points, faces[:-1]), "stl")
    assert err.value.code == MESH_NOT_CLOSED and err.value.field == "survey.mesh"
    assert "not closed" in err.value.detail and "hole" in err.value.detail
    assert err.value.extra["open_edges"] == 3


def test_a_mesh_with_a_flipped_face_is_refused_naming_the_face() -> None:
    points, faces = frustum(R0, R1, H, 32)
    a, b, c = faces[17]
    faces[17] = (a, c, b)
    with pytest.raises(InvalidInput) as err:
        curve_from_mesh(obj(points, faces), "obj")
    assert err.value.code == MESH_NOT_ORIENTED
    assert err.value.extra["face"] == 18
    assert "face 18" in err.value.detail and "flipped" in err.value.detail


def test_a_mesh_with_an_edge_of_three_faces_is_refused() -> None:
    points, faces = octahedron(1.0)
    with pytest.raises(InvalidInput) as err:
        curve_from_mesh(obj(points, [*faces, faces[0]]), "obj")
    assert err.value.code == MESH_NOT_MANIFOLD


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\xff\xfe not text", "stl"),
        (b"facet normal 0 0 1\n", "stl"),
        (b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nendloop\nendfacet\n", "stl"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "obj"),
        (b"v 0 0 zero\n", "obj"),
        (b"", "obj"),
        (b"v 0 0 0", "ply"),
    ],
)
def test_an_unreadable_mesh_is_refused(data: bytes, fmt: str) -> None:
    with pytest.raises(InvalidInput) as err:
        curve_from_mesh(data, fmt)  # type: ignore[arg-type]
    assert err.value.field in ("survey.mesh", "survey.format")


# --- the plan follows the curve ---------------------------------------------------------


def test_stage_tops_in_m_become_the_curves_volume_and_tops_in_m3_its_height() -> None:
    points, faces = frustum(R0, R1, H, SIDES)
    curve, _ = curve_from_mesh(obj(points, faces), "obj")
    geometry = StopeGeometry.from_curve(curve)
    assert geometry.plan_area_m2 == pytest.approx(curve.volume_m3 / H)
    plan = FillPlan(
        geometry,
        (
            Stage("plug", "R1", 1.0, cure_hold_h=12.0, top_height_m=4.0),
            Stage("lower", "R2", 2.0, top_volume_m3=2000.0),
            Stage("upper", "R3", 2.0, stage_volume_m3=500.0),
        ),
    )
    tops = plan.top_volumes_m3
    assert tops[0] == pytest.approx(frustum_volume(R0, R1, H, 4.0, SIDES), rel=1e-4)
    assert tops[1] == 2000.0 and tops[2] == pytest.approx(2500.0)
    heights = plan.top_heights_m
    assert heights[0] == 4.0
    assert frustum_volume(R0, R1, H, heights[1], SIDES) == pytest.approx(2000.0, rel=1e-4)
    assert StopeGeometry.from_dict(geometry.to_dict()) == geometry
    with pytest.raises(InvalidInput) as err:
        FillPlan(geometry, (Stage("all", "R1", 1.0, top_volume_m3=curve.volume_m3 * 1.01),))
    assert err.value.field == "stages[0].top_volume_m3"


def test_a_mesh_of_too_many_tall_faces_is_refused_before_it_is_sliced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import service.core.stope_geometry as geometry

    points, faces = frustum(R0, R1, H, 64)  # 128 side faces, each the whole height
    monkeypatch.setattr(geometry, "MAX_CROSSINGS", 100 * 1025)
    with pytest.raises(InvalidInput) as err:
        curve_from_mesh(obj(points, faces), "obj")
    assert err.value.field == "survey.mesh" and "remesh" in err.value.detail
