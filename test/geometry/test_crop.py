import cv2
import numpy as np
import pytest

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.crop import RoiCrop

IMAGE_SIZE = (640, 480)  # width, height


def gaussian_blob(center, sigma=2.0, size=IMAGE_SIZE):
    u, v = np.meshgrid(np.arange(size[0]), np.arange(size[1]))
    return np.exp(-((u - center[0]) ** 2 + (v - center[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def centroid(image):
    v, u = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(u * image).sum(), (v * image).sum()]) / image.sum()


def test_round_trip_image_crop_image_is_exact():
    crop = RoiCrop.from_box((101.3, 57.9, 233.7, 140.2), size=128, margin=0.15)
    points = np.random.default_rng(0).uniform(-50, 700, size=(100, 2))
    np.testing.assert_allclose(crop.crop_to_image(crop.image_to_crop(points)), points, atol=1e-9)
    np.testing.assert_allclose(np.vstack([crop.matrix, [0, 0, 1]]) @ np.vstack([crop.inverse_matrix, [0, 0, 1]]),
                               np.eye(3), atol=1e-12)
    np.testing.assert_allclose(crop.inverse_matrix, cv2.invertAffineTransform(crop.matrix), atol=1e-12)


def test_box_longer_side_fills_the_crop_and_centre_maps_to_centre():
    crop = RoiCrop.from_box((100.0, 50.0, 300.0, 150.0), size=128)  # 200 x 100, wide
    assert crop.scale == pytest.approx(128 / 200)
    np.testing.assert_allclose(crop.image_to_crop([[100.0, 100.0], [300.0, 100.0], [200.0, 100.0]]),
                               [[-0.5, 63.5], [127.5, 63.5], [63.5, 63.5]])
    assert crop.square_box == pytest.approx((100.0, 0.0, 300.0, 200.0))


def test_bright_pixel_lands_where_image_to_crop_says():
    # scale 1, integer shift: a single pixel moves exactly
    image = np.zeros((480, 640), np.uint8)
    image[200, 300] = 255
    crop = RoiCrop.from_box((250.5, 150.5, 378.5, 278.5), size=128)
    assert crop.scale == 1.0
    patch = crop.apply(image)
    expected = crop.image_to_crop([[300, 200]])[0]
    assert np.argwhere(patch == 255).tolist() == [[int(expected[1]), int(expected[0])]]
    # non-integer scale and shift: a blob's centroid follows the affine to a small fraction of a pixel
    blob_centre = (317.3, 211.8)
    crop = RoiCrop.from_box((290.2, 180.7, 341.9, 246.1), size=128)
    patch = crop.apply(gaussian_blob(blob_centre))
    np.testing.assert_allclose(centroid(patch), crop.image_to_crop([blob_centre])[0], atol=0.05)


def test_aspect_preserving_black_padding_for_wide_and_tall_boxes():
    image = np.full((480, 640, 3), 200, np.uint8)
    wide = RoiCrop.from_box((100.0, 100.0, 300.0, 200.0), size=128).apply(image)  # 2:1
    assert wide.shape == (128, 128, 3) and wide.dtype == np.uint8
    content_rows = np.nonzero(wide[:, 64, 0])[0]
    assert (content_rows.min(), content_rows.max()) == (32, 95)  # 64 rows of content, centred
    assert (wide[:32] == 0).all() and (wide[96:] == 0).all() and (wide[32:96] == 200).all()
    tall = RoiCrop.from_box((100.0, 100.0, 150.0, 300.0), size=128).apply(image)  # 1:4
    content_columns = np.nonzero(tall[64, :, 0])[0]
    assert (content_columns.min(), content_columns.max()) == (48, 79)
    # the padding hides image content beyond the box, even where the image has some
    assert image[100 - 50, 200].any() and not wide[0, 64].any()


def test_boxes_partly_or_wholly_outside_the_image_are_black_there():
    image = np.full((480, 640), 7, np.uint8)
    crop = RoiCrop.from_box((-64.5, 100.0, 63.5, 228.0), size=128)  # left half off the image
    patch = crop.apply(image)
    left_edge = crop.image_to_crop([[-0.5, 0.0]])[0, 0]
    assert left_edge == pytest.approx(63.5)
    assert (patch[:, :63] == 0).all() and (patch[:, 65:] == 7).all()
    assert not RoiCrop.from_box((700.0, 500.0, 800.0, 600.0)).apply(image).any()
    single_channel = RoiCrop.from_box((0.0, 0.0, 10.0, 10.0), size=16).apply(np.ones((20, 20, 1), np.float32))
    assert single_channel.shape == (16, 16, 1)


def test_degenerate_boxes_and_bad_arguments_raise():
    for box in [(10, 10, 10, 20), (10, 10, 20, 5), (np.nan, 0, 10, 10), (0, 0, np.inf, 10)]:
        with pytest.raises(ValueError, match="box"):
            RoiCrop.from_box(box)
    with pytest.raises(ValueError, match="shape"):
        RoiCrop.from_box((0, 0, 10))
    with pytest.raises(ValueError, match="margin"):
        RoiCrop.from_box((0, 0, 10, 10), margin=-0.1)
    with pytest.raises(ValueError, match="size"):
        RoiCrop.from_box((0, 0, 10, 10), size=0)
    with pytest.raises(ValueError, match="points"):
        RoiCrop.from_box((0, 0, 10, 10)).image_to_crop([1, 2])


def test_margin_grows_the_box_about_its_centre():
    crop = RoiCrop.from_box((100.0, 100.0, 200.0, 150.0), margin=0.1)
    assert crop.box == pytest.approx((90.0, 95.0, 210.0, 155.0))


def test_normalized_box_uses_the_image_extent():
    width, height = IMAGE_SIZE
    full = RoiCrop.from_box((-0.5, -0.5, width - 0.5, height - 0.5))
    np.testing.assert_allclose(full.normalized_box(width, height), [0, 0, 1, 1], atol=1e-7)
    box = RoiCrop.from_box((159.5, 119.5, 479.5, 359.5)).normalized_box(width, height)
    assert box.dtype == np.float32
    np.testing.assert_allclose(box, [0.25, 0.25, 0.75, 0.75])


@pytest.mark.parametrize("distortion", [None, [-0.2, 0.05, 0.001, 0.0, 0.0]])
def test_crop_camera_projects_into_the_crop(distortion):
    camera = CameraModel([500.0, 0, 319.5, 0, 500.0, 239.5, 0, 0, 1], distortion, 640, 480)
    rng = np.random.default_rng(1)
    points = np.stack([rng.uniform(-0.3, 0.3, 30), rng.uniform(-0.2, 0.2, 30), rng.uniform(1, 3, 30)], axis=1)
    crop = RoiCrop.from_box((250.0, 180.0, 330.0, 290.0), size=96)
    crop_camera = crop.crop_camera(camera)
    assert (crop_camera.width, crop_camera.height) == (96, 96)
    np.testing.assert_allclose(crop_camera.project(points), crop.image_to_crop(camera.project(points)), atol=1e-9)
    np.testing.assert_allclose(crop_camera.backproject(crop.image_to_crop(camera.project(points)), points[:, 2]),
                               points, atol=1e-6)
