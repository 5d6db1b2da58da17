import cv2
import numpy as np
import pytest

from lakedet.errors import DataError
from lakedet.data.decode import decode_image
from lakedet.data.transforms import LoadImageFromDeepLake

pytestmark = pytest.mark.timeout(30)


def test_decode_jpeg_png_gray_rgba_and_garbage():
    bgr = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    np.testing.assert_array_equal(decode_image(png, compressed=True), bgr)
    gray = bgr[:, :, 0]
    np.testing.assert_array_equal(decode_image(cv2.imencode(".png", gray)[1].tobytes(), True)[:, :, 2], gray)
    rgba = np.dstack([bgr[:, :, ::-1], np.full((6, 5), 255, np.uint8)])
    np.testing.assert_array_equal(decode_image(rgba, compressed=False), bgr)
    np.testing.assert_array_equal(decode_image(bgr[:, :, ::-1], compressed=False), bgr)
    assert decode_image(b"not an image", compressed=True) is None


def test_load_image_sets_shapes_and_fractional_boxes_to_pixels():
    img = np.zeros((10, 20, 3), np.uint8)
    results = {"img_bytes": cv2.imencode(".png", img)[1].tobytes(), "img_id": 0,
               "instances": [{"bbox": [0.5, 0.5, 1.0, 1.0], "bbox_label": 0, "ignore_flag": 0}],
               "deeplake_fractional_boxes": True}
    out = LoadImageFromDeepLake(to_float32=True)(results)
    assert out["img"].dtype == np.float32 and out["img_shape"] == (10, 20) == out["ori_shape"]
    assert out["instances"][0]["bbox"] == [10.0, 5.0, 20.0, 10.0]
    assert "img_bytes" not in out


def test_load_image_without_deeplake_sample_is_an_error():
    with pytest.raises(DataError, match="DeepLakeDetDataset"):
        LoadImageFromDeepLake()({"img_path": "x.jpg"})


@pytest.mark.parametrize("color_type, shape", [("color", (6, 5, 3)), ("grayscale", (6, 5)), ("unchanged", (6, 5, 4))])
def test_color_type_and_decode_backend_follow_load_image_from_file(color_type, shape):
    from mmcv.transforms import LoadImageFromFile

    from lakedet.data.pipeline import place_loading_steps

    bgra = np.random.default_rng(1).integers(0, 255, (6, 5, 4), dtype=np.uint8)
    png = cv2.imencode(".png", bgra)[1].tobytes()
    step, = place_loading_steps([dict(type="LoadImageFromFile", color_type=color_type, imdecode_backend="cv2")])
    assert step["color_type"] == color_type  # the option reaches lakedet's loader
    ours = LoadImageFromDeepLake(**{k: v for k, v in step.items() if k != "type"})({"img_bytes": png, "img_id": 0})
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(png)
        f.flush()
        theirs = LoadImageFromFile(color_type=color_type)({"img_path": f.name})
    assert ours["img"].shape == shape
    np.testing.assert_array_equal(ours["img"], theirs["img"])
    gray_rows = LoadImageFromDeepLake(color_type="grayscale")({"img_array": bgra[:, :, 2::-1].copy(), "img_id": 0})
    assert gray_rows["img"].shape == (6, 5)
