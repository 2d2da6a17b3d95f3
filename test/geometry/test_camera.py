import math

import cv2
import numpy as np
import pytest

from ros2_pose.geometry.camera import CameraModel, InvalidIntrinsicsError

K = [500.0, 0.0, 319.5, 0.0, 510.0, 239.5, 0.0, 0.0, 1.0]
PLUMB_BOB = [-0.28, 0.07, 0.001, -0.0005, 0.0]
FISHEYE = [0.05, -0.01, 0.002, -0.0005]


def pinhole():
    return CameraModel(K, None, 640, 480)


def random_points_in_view(count=200, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.5, 8.0, count)
    return np.stack([rng.uniform(-0.45, 0.45, count) * z, rng.uniform(-0.35, 0.35, count) * z, z], axis=1)


def test_pinhole_projection_by_hand_and_properties():
    camera = pinhole()
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (500.0, 510.0, 319.5, 239.5)
    np.testing.assert_allclose(camera.project([[0, 0, 2], [1, -1, 2]]), [[319.5, 239.5], [569.5, -15.5]])
    pixels = camera.project([[0, 0, -1], [0, 0, 0], [np.nan, 0, 1]])
    assert np.isnan(pixels).all()
    assert camera.project(np.zeros((0, 3))).shape == (0, 2)


@pytest.mark.parametrize("model,coefficients", [("plumb_bob", None), ("plumb_bob", PLUMB_BOB),
                                                ("rational_polynomial", PLUMB_BOB + [0.01, 0.0, 0.0]),
                                                ("equidistant", FISHEYE)])
def test_project_backproject_round_trip(model, coefficients):
    camera = CameraModel(K, coefficients, 640, 480, distortion_model=model)
    points = random_points_in_view()
    pixels = camera.project(points)
    assert np.isfinite(pixels).all()
    np.testing.assert_allclose(camera.backproject(pixels, points[:, 2]), points, atol=1e-6)
    if coefficients is not None:  # distortion does move points (the test can fail)
        assert np.abs(pixels - pinhole().project(points)).max() > 1.0


def test_distorted_projection_matches_opencv_and_undistort_points():
    camera = CameraModel(K, PLUMB_BOB, 640, 480)
    points = random_points_in_view(50, seed=1)
    expected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), camera.K, np.array(PLUMB_BOB))
    np.testing.assert_allclose(camera.project(points), expected.reshape(-1, 2), atol=1e-9)
    # undistort_points gives the pixels the same points have in the undistorted (pinhole) image
    np.testing.assert_allclose(camera.undistort_points(camera.project(points)), pinhole().project(points), atol=1e-6)
    assert camera.undistorted().has_distortion is False


@pytest.mark.parametrize("model,coefficients", [("plumb_bob", PLUMB_BOB), ("equidistant", FISHEYE)])
def test_undistort_image_moves_a_bright_pixel_where_undistort_points_says(model, coefficients):
    camera = CameraModel(K, coefficients, 640, 480, distortion_model=model)
    point = np.array([[1.2, 0.9, 2.0]])
    raw_pixel = camera.project(point)[0]
    image = np.zeros((480, 640), np.float32)
    u, v = np.round(raw_pixel).astype(int)
    image[v - 2:v + 3, u - 2:u + 3] = 1.0  # a blob so bilinear sampling keeps it
    undistorted = camera.undistort_image(image)
    ys, xs = np.nonzero(undistorted > 0.5)
    expected = camera.undistort_points([[u, v]])[0]
    assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0
    assert np.hypot(*(expected - [u, v])) > 10  # the blob really moved
    assert pinhole().undistort_image(image) is image
    with pytest.raises(ValueError, match="480x640"):
        camera.undistort_image(np.zeros((10, 10)))
    # what the pipelines see: the undistorted image with the camera of it, or both untouched
    view, view_camera = camera.pinhole_view(image)
    np.testing.assert_array_equal(view, undistorted)
    assert not view_camera.has_distortion and np.array_equal(view_camera.K, camera.K)
    same, same_camera = pinhole().pinhole_view(image)
    assert same is image and same_camera.has_distortion is False


def test_depth_to_points_matches_backproject_and_marks_unknown():
    camera = CameraModel(K, PLUMB_BOB, 640, 480).resized(64, 48)
    depth = np.full((48, 64), 2.0, np.float32)
    depth[0, 0] = 0.0
    depth[1, 1] = np.nan
    points = camera.depth_to_points(depth)
    assert points.shape == (48, 64, 3) and points.dtype == np.float32
    assert np.isnan(points[0, 0]).all() and np.isnan(points[1, 1]).all()
    np.testing.assert_allclose(points[10, 20], camera.backproject([[20, 10]], [2.0])[0], atol=1e-5)
    np.testing.assert_allclose(camera.project(points[5:7, 3:9].reshape(-1, 3).astype(np.float64)),
                               np.stack(np.meshgrid(np.arange(3, 9), np.arange(5, 7)), -1).reshape(-1, 2), atol=1e-3)


def test_scaled_camera_follows_cv2_resize_pixel_centres():
    camera = pinhole()
    half = camera.scaled(0.5)
    assert (half.width, half.height) == (320, 240)
    points = random_points_in_view(20)
    np.testing.assert_allclose(half.project(points), 0.5 * (camera.project(points) + 0.5) - 0.5, atol=1e-9)
    # a bright 2x2 block resized by 0.5 becomes one pixel where the scaled camera says
    image = np.zeros((480, 640), np.float32)
    image[100:102, 200:202] = 1.0
    small = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
    assert small[50, 100] == pytest.approx(1.0)
    block_centre_point = camera.backproject([[200.5, 100.5]], [3.0])
    np.testing.assert_allclose(half.project(block_centre_point), [[100.0, 50.0]], atol=1e-9)
    assert camera.resized(320, 240).K.tolist() == half.K.tolist()


def test_from_camera_info_rclpy_and_rosbags_round_trip():
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CameraInfo

    camera = CameraModel(K, PLUMB_BOB, 640, 480)
    fields = camera.to_camera_info_fields()
    rclpy_camera = CameraModel.from_camera_info(CameraInfo(**fields))
    np.testing.assert_array_equal(rclpy_camera.K, camera.K)
    np.testing.assert_array_equal(rclpy_camera.D, camera.D)
    np.testing.assert_array_equal(rclpy_camera.P, camera.P)
    assert (rclpy_camera.width, rclpy_camera.height, rclpy_camera.distortion_model) == (640, 480, "plumb_bob")

    typestore = get_typestore(Stores.ROS2_KILTED)
    msg_types = typestore.types
    Header, Time = typestore.types["std_msgs/msg/Header"], typestore.types["builtin_interfaces/msg/Time"]
    RegionOfInterest = msg_types["sensor_msgs/msg/RegionOfInterest"]
    rosbags_msg = msg_types["sensor_msgs/msg/CameraInfo"](
        header=Header(stamp=Time(sec=1, nanosec=2), frame_id="camera_optical_frame"),
        height=480, width=640, distortion_model="plumb_bob", d=np.array(PLUMB_BOB), k=np.array(K),
        r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    rosbags_camera = CameraModel.from_camera_info(rosbags_msg)
    np.testing.assert_array_equal(rosbags_camera.K, camera.K)
    np.testing.assert_array_equal(rosbags_camera.P[:, :3], camera.K)  # zero P falls back to [K | 0]
    with pytest.raises(TypeError, match="CameraInfo"):
        CameraModel.from_camera_info(object())


@pytest.mark.parametrize("k,match", [
    ([0.0] * 9, "uncalibrated"),
    ([0.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1], r"fx=0, fy=510"),
    ([-500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1], "fx=-500"),
    ([500.0, 0, np.nan, 0, 510.0, 239.5, 0, 0, 1], "non-finite.*nan"),
    ([500.0, 0, 319.5, 0, np.inf, 239.5, 0, 0, 1], "non-finite"),
    ([500.0, 1.0, 319.5, 0, 510.0, 239.5, 0, 0, 1], "no skew"),
    ([500.0, 0, 319.5], "9 entries"),
])
def test_invalid_intrinsics_are_rejected_with_the_bad_values(k, match):
    with pytest.raises(InvalidIntrinsicsError, match=match):
        CameraModel(k, None, 640, 480)


def test_invalid_size_distortion_and_model_are_rejected():
    with pytest.raises(InvalidIntrinsicsError, match="width=0"):
        CameraModel(K, None, 0, 480)
    with pytest.raises(InvalidIntrinsicsError, match="required"):
        CameraModel(K)
    with pytest.raises(InvalidIntrinsicsError, match="non-finite"):
        CameraModel(K, [0.1, math.nan, 0, 0, 0], 640, 480)
    with pytest.raises(InvalidIntrinsicsError, match="not supported"):
        CameraModel(K, None, 640, 480, distortion_model="kannala_brandt_42")
    with pytest.raises(InvalidIntrinsicsError, match="coefficients, got 3"):
        CameraModel(K, [0.1, 0.0, 0.0], 640, 480)
    assert isinstance(InvalidIntrinsicsError("x"), ValueError)
    with pytest.raises(ValueError, match="rotation"):
        pinhole().warped([[0, 1, 0], [1, 0, 0]], 10, 10)
