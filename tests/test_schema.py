import logging

import numpy as np
import pytest

from lakedet.errors import SchemaError
from lakedet.schema import (BoxFormat, BoxMode, box_format_from_metadata, boxes_to_xyxy,
                            class_names_from_metadata, convert_boxes, resolve_tensor_map)

pytestmark = pytest.mark.timeout(30)

# One box, x1=10 y1=20 x2=40 y2=80 in a 200 (w) x 100 (h) image, in every stored format.
EXPECTED = np.array([[10, 20, 40, 80]], np.float32)
STORED = {
    (BoxMode.LTWH, False): [10, 20, 30, 60],
    (BoxMode.LTRB, False): [10, 20, 40, 80],
    (BoxMode.CCWH, False): [25, 50, 30, 60],
    (BoxMode.LTWH, True): [10 / 200, 20 / 100, 30 / 200, 60 / 100],
    (BoxMode.LTRB, True): [10 / 200, 20 / 100, 40 / 200, 80 / 100],
    (BoxMode.CCWH, True): [25 / 200, 50 / 100, 30 / 200, 60 / 100],
}


@pytest.mark.parametrize("mode,fractional", list(STORED))
def test_box_conversion_all_six_formats(mode, fractional):
    out = boxes_to_xyxy(np.array([STORED[mode, fractional]]), BoxFormat(mode, fractional), height=100, width=200)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, EXPECTED, atol=1e-4)


@pytest.mark.parametrize("source", list(BoxMode))
@pytest.mark.parametrize("target", list(BoxMode))
def test_the_one_converter_goes_between_every_pair_of_modes(source, target):
    pixel = {mode: np.array([stored], np.float64) for (mode, fractional), stored in STORED.items() if not fractional}
    out = convert_boxes(pixel[source], source, target)
    assert out.dtype == np.float64 and out.shape == (1, 4)
    np.testing.assert_allclose(out, pixel[target])
    np.testing.assert_allclose(convert_boxes(out, target, source), pixel[source])  # and back
    assert convert_boxes(np.zeros((0,)), source, target, np.float32).shape == (0, 4)


def test_box_conversion_empty_and_fractional_needs_size():
    assert boxes_to_xyxy(np.zeros((0,)), BoxFormat()).shape == (0, 4)
    with pytest.raises(ValueError, match="height and width"):
        boxes_to_xyxy(np.ones((1, 4)), BoxFormat(BoxMode.LTWH, True))


def test_box_format_from_metadata_reads_coords():
    assert box_format_from_metadata({"coords": {"mode": "ccwh", "type": "fractional"}}, "b") == \
        BoxFormat(BoxMode.CCWH, True)
    assert box_format_from_metadata({"coords": {"mode": "LTRB", "type": "pixel"}}, "b") == BoxFormat(BoxMode.LTRB)


def test_missing_coords_means_ltwh_pixel_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        assert box_format_from_metadata({}, "boxes") == BoxFormat(BoxMode.LTWH, False)
    assert "boxes" in caplog.text and "LTWH" in caplog.text


def test_unknown_coords_mode_is_an_error_naming_column_and_modes():
    with pytest.raises(SchemaError) as err:
        box_format_from_metadata({"coords": {"mode": "XYWH", "type": "pixel"}}, "boxes")
    msg = str(err.value)
    assert "'boxes'" in msg and "XYWH" in msg and "LTWH" in msg and "CCWH" in msg
    with pytest.raises(SchemaError, match="'pixel' or 'fractional'"):
        box_format_from_metadata({"coords": {"mode": "LTWH", "type": "normalized"}}, "boxes")


COLUMNS = {"images": "Image", "boxes": "BoundingBox", "labels": "ClassLabel", "masks": "BinaryMask",
           "name": "Text"}


def test_mapping_is_inferred_from_column_types():
    tm = resolve_tensor_map(COLUMNS)
    assert tm.as_dict() == {"img": "images", "gt_bboxes": "boxes", "gt_labels": "labels", "gt_masks": "masks"}
    no_masks = resolve_tensor_map({k: v for k, v in COLUMNS.items() if k != "masks"})
    assert no_masks.gt_masks is None


def test_explicit_mapping_wins_over_inference():
    columns = dict(COLUMNS, other_boxes="BoundingBox")
    tm = resolve_tensor_map(columns, {"gt_bboxes": "other_boxes"})
    assert tm.gt_bboxes == "other_boxes" and tm.img == "images"


def test_two_candidate_columns_is_an_error_listing_both_and_the_mapping_to_write():
    columns = dict(COLUMNS, boxes2="BoundingBox")
    with pytest.raises(SchemaError) as err:
        resolve_tensor_map(columns)
    msg = str(err.value)
    assert "'boxes'" in msg and "'boxes2'" in msg
    assert "'gt_bboxes': 'boxes'" in msg  # the mapping to write


def test_missing_column_named_in_mapping_suggests_the_right_one():
    with pytest.raises(SchemaError) as err:
        resolve_tensor_map(COLUMNS, {"gt_bboxes": "boxs"})
    msg = str(err.value)
    assert "['gt_bboxes']" in msg and "'boxs'" in msg and "did you mean 'boxes'" in msg


def test_unknown_mapping_key_and_missing_required_column():
    with pytest.raises(SchemaError, match="did you mean 'gt_labels'"):
        resolve_tensor_map(COLUMNS, {"gt_label": "labels"})
    with pytest.raises(SchemaError, match="no column for 'img'"):
        resolve_tensor_map({"boxes": "BoundingBox", "labels": "ClassLabel"})


def test_class_names_from_metadata_or_generated_with_warning(caplog):
    assert class_names_from_metadata({"class_names": ["a", "b"]}, "labels", 2) == ("a", "b")
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        assert class_names_from_metadata({}, "labels", 3) == ("class_0", "class_1", "class_2")
    assert "class_names" in caplog.text


def test_prediction_columns_are_not_taken_for_ground_truth():
    columns = dict(COLUMNS, pred_boxes="BoundingBox", pred_labels="ClassLabel", pred_masks="BinaryMask")
    assert resolve_tensor_map(columns).as_dict() == resolve_tensor_map(COLUMNS).as_dict()


def test_an_explicitly_mapped_column_of_the_wrong_type_is_named():
    with pytest.raises(SchemaError, match=r"\['img'\]: column 'name' has type Text; img needs Image or Generic"):
        resolve_tensor_map(COLUMNS, {"img": "name"})
    with pytest.raises(SchemaError, match=r"\['gt_labels'\]: column 'boxes' has type BoundingBox"):
        resolve_tensor_map(COLUMNS, {"gt_labels": "boxes"})


def test_two_mask_columns_are_asked_about_only_when_the_run_needs_masks():
    columns = dict(COLUMNS, polygons="Polygon")
    detector = resolve_tensor_map(columns, needed=("gt_ignore",))  # a pure detector: no masks loaded
    assert detector.gt_masks is None and detector.undecided == {"gt_masks": ("masks", "polygons")}
    with pytest.raises(SchemaError, match=r"cannot infer 'gt_masks': columns \['masks', 'polygons'\] all fit"):
        resolve_tensor_map(columns, needed=("gt_ignore", "gt_masks"))
    chosen = resolve_tensor_map(columns, {"gt_masks": "polygons"}, needed=("gt_masks",))
    assert chosen.gt_masks == "polygons" and not chosen.undecided
    assert resolve_tensor_map(COLUMNS, needed=()).gt_masks == "masks"  # one that fits is always taken
