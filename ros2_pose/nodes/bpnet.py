"""bpnet: camera image -> every person's 2D skeleton (BodyPoseNet, bottom-up, no person detector).

Runs `ros2_pose.pipelines.body_pose.estimate_people` (network maps -> peaks -> PAF grouping) on
each image; the network is a BodyPoseNet model folder loaded through the one runner (torch |
onnxruntime | tensorrt, `backend`/`precision` parameters). The inference parameters mirror the
seed's inference spec (config/bpnet/infer.yaml). Fixed-shape backends (onnxruntime, tensorrt) need
`keep_aspect_ratio_mode: pad_image_input`, one scale and the model's exported input size;
`input_shape: [0, 0]` takes that size from model.yaml.

Subscribes: `image` (sensor_msgs/Image), `camera_info` (sensor_msgs/CameraInfo, optional: only the
markers need it).
Publishes (all with the image's header):
- `people/skeletons` (ros2_pose_msgs/SkeletonArray): joint_names in COCO-17 order, limb_a/limb_b the
  COCO skeleton (0-based), one Skeleton per person (best first) with all 17 keypoints: x, y in
  pixels, confidence = heatmap peak clipped to [0, 1], visibility 2 (found) or 0 (not found, x = y
  = confidence = 0); box around the found joints; score as in detection.json. Published on every
  image, empty when nobody is seen.
- `people/markers` (visualization_msgs/MarkerArray, `publish_markers`): RViz shows markers in 3D,
  so each skeleton is drawn in the image plane placed at `marker_depth_m` in the camera optical
  frame: every pixel is back-projected with the CameraInfo intrinsics (distortion included) to
  z = marker_depth_m. One DELETEALL, then per person a LINE_LIST (limbs) and a SPHERE_LIST
  (joints). Intrinsics are never guessed: until a camera_info arrives no markers are published
  (diagnostics count those frames).
- `people/annotated_image` (sensor_msgs/Image rgb8, `publish_annotated_image`): skeletons drawn.
- /diagnostics: frames with/without people, people in the last frame, frames without markers.
"""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.pipelines.body_pose import (BodyPoseConfigError, BodyPoseInferenceConfig, Person, draw_people,
                                           estimate_people, require_fixed_input, runner_predictor)
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.model_loading import MODEL_PARAMETERS, load_runner
from ros2_pose.ros.node_base import LifecycleNodeBase, make_node_main
from ros2_pose.sim.skeleton import COCO_KEYPOINTS, COCO_SKELETON, bodypose18_to_coco17

COCO_LIMBS = np.asarray(COCO_SKELETON, dtype=np.int64) - 1  # 0-based, as SkeletonArray wants


def skeleton_array(header, people: list[Person]):
    """ros2_pose_msgs/SkeletonArray of the people (COCO-17 joints, COCO limbs)."""
    from ros2_pose_msgs.msg import BoundingBox2D, Keypoint2D, Skeleton, SkeletonArray

    message = SkeletonArray(header=header, joint_names=list(COCO_KEYPOINTS),
                            limb_a=COCO_LIMBS[:, 0].tolist(), limb_b=COCO_LIMBS[:, 1].tolist())
    for index, person in enumerate(people):
        kp = person.coco_keypoints()
        confidence = np.clip(bodypose18_to_coco17(person.keypoints18)[:, 2], 0.0, 1.0)
        if not (np.isfinite(kp).all() and np.isfinite(person.score)):
            raise FloatingPointError(f"person {index} has non-finite keypoints or score")
        x_min, y_min, x_max, y_max = person.box()
        message.skeletons.append(Skeleton(
            person_id=index, score=float(person.score),
            box=BoundingBox2D(x_min=x_min, y_min=y_min, x_max=x_max, y_max=y_max),
            keypoints=[Keypoint2D(name=name, x=float(x), y=float(y), confidence=float(c), visibility=int(v))
                       for name, (x, y, v), c in zip(COCO_KEYPOINTS, kp, confidence)]))
    return message


def skeleton_markers(header, people: list[Person], camera: CameraModel, depth_m: float,
                     line_width_m: float) -> MarkerArray:
    """DELETEALL, then per person a LINE_LIST of limbs and a SPHERE_LIST of joints, each pixel
    back-projected to z = depth_m in the camera optical frame."""
    markers = MarkerArray(markers=[Marker(header=header, ns="bpnet", action=Marker.DELETEALL)])
    for index, person in enumerate(people):
        kp = person.coco_keypoints()
        found = kp[:, 2] > 0
        points = camera.backproject(kp[:, :2], depth_m)
        hue = (index * 0.618) % 1.0  # golden-ratio hues: neighbours get distinct colours
        colour = ColorRGBA(r=float(abs(np.cos(np.pi * hue))), g=float(abs(np.sin(np.pi * hue))), b=0.9, a=1.0)
        limbs = Marker(header=header, ns="bpnet/limbs", id=index, type=Marker.LINE_LIST, action=Marker.ADD)
        limbs.pose.orientation.w = 1.0
        limbs.scale.x = line_width_m
        limbs.color = colour
        for a, b in COCO_LIMBS:
            if found[a] and found[b]:
                limbs.points += [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in (points[a], points[b])]
        joints = Marker(header=header, ns="bpnet/joints", id=index, type=Marker.SPHERE_LIST, action=Marker.ADD)
        joints.pose.orientation.w = 1.0
        joints.scale.x = joints.scale.y = joints.scale.z = 2 * line_width_m
        joints.color = colour
        joints.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in points[found]]
        markers.markers += [limbs, joints]
    return markers


class BodyPoseNode(LifecycleNodeBase):
    NODE_NAME = "bpnet"
    CONFIG_FILE = "bpnet.yaml"
    PARAMETERS = {
        "model": ("bpnet", "shipped model name (models/<name>) or folder of a BodyPoseNet model"),
        **MODEL_PARAMETERS,
        "input_shape": ([0, 0], "network input [height, width]; [0, 0]: the model's exported input size"),
        "keep_aspect_ratio_mode": ("pad_image_input", "pad_image_input | adjust_network_input (torch only) | none"),
        "output_upsampling_factor": ([8, 8], "upsampling of the network maps before peak finding [y, x]"),
        "heatmap_threshold": (0.1, "heatmap threshold of the joint peak non-maximum suppression"),
        "paf_threshold": (0.05, "part affinity score below which a limb sample does not count"),
        "multi_scale_inference": (False, "average the maps over `scales` (torch backend only)"),
        "scales": ([0.5, 1.0, 1.5, 2.0], "input scales of multi-scale inference"),
        "min_parts": (3, "people with fewer joints are dropped"),
        "min_mean_score": (0.2, "people whose mean joint+limb score is lower are dropped"),
        "publish_markers": (True, "publish people/markers (needs camera_info)"),
        "marker_depth_m": (2.0, "z (metres, camera optical frame) of the plane the markers are drawn in"),
        "marker_line_width_m": (0.01, "limb line width of the markers (joints are twice as wide)"),
        "publish_annotated_image": (False, "publish people/annotated_image with the skeletons drawn"),
    }

    def on_configure_node(self):
        c = self.config
        if c["marker_depth_m"] <= 0 or c["marker_line_width_m"] <= 0:
            raise BodyPoseConfigError(f"marker_depth_m and marker_line_width_m must be > 0, got "
                                      f"{c['marker_depth_m']}, {c['marker_line_width_m']}")
        mode = None if c["keep_aspect_ratio_mode"].lower() == "none" else c["keep_aspect_ratio_mode"]
        self.inference = dict(keep_aspect_ratio_mode=mode, output_upsampling_factor=tuple(c["output_upsampling_factor"]),
                              heatmap_threshold=c["heatmap_threshold"], paf_threshold=c["paf_threshold"],
                              multi_scale_inference=c["multi_scale_inference"], scales=tuple(c["scales"]),
                              min_parts=c["min_parts"], min_mean_score=c["min_mean_score"])
        self.input_shape = tuple(int(v) for v in c["input_shape"])
        if len(self.input_shape) != 2:
            raise BodyPoseConfigError(f"input_shape must be [height, width], got {list(self.input_shape)}")
        # Checked now, so a bad setting fails configure rather than every frame ([0, 0]: the
        # dataclass default stands in until the model's size is known at activate).
        BodyPoseInferenceConfig(**({"input_shape": self.input_shape} if any(self.input_shape) else {}),
                                **self.inference)
        self.skeleton_publisher = self.create_output_publisher(self.skeleton_msg_type(), "people/skeletons")
        self.marker_publisher = (self.create_output_publisher(MarkerArray, "people/markers")
                                 if c["publish_markers"] else None)
        self.image_publisher = (self.create_output_publisher(Image, "people/annotated_image")
                                if c["publish_annotated_image"] else None)
        self.camera = None
        self.counts = {"frames_with_people": 0, "frames_without_people": 0, "frames_without_markers": 0,
                       "people_last_frame": 0}

    @staticmethod
    def skeleton_msg_type():
        from ros2_pose_msgs.msg import SkeletonArray
        return SkeletonArray

    def on_activate_node(self):
        c = self.config
        runner = load_runner(self, c["model"])
        model_config = runner.spec.config_if_present()
        model_hw = tuple(int(v) for v in model_config.inputs[0].shape[2:4]) if model_config else None
        if not any(self.input_shape) and model_hw is None:
            raise BodyPoseConfigError(f"model {c['model']} has no model.yaml input size: set input_shape")
        self.pipeline_config = BodyPoseInferenceConfig(input_shape=self.input_shape if any(self.input_shape) else model_hw,
                                                       **self.inference)
        if runner.backend != "torch":
            require_fixed_input(self.pipeline_config, model_hw or self.pipeline_config.input_shape, runner.backend)
        self.predict = runner_predictor(runner)
        self.create_camera_info_subscription("camera_info")
        self.create_image_subscription("image", self.on_image, desired_encoding="rgb8")

    def on_cleanup_node(self):
        self.predict = None

    def on_image(self, msg: Image, image):
        with self.timed("pipeline"):
            people = estimate_people(self.predict, image, self.pipeline_config)
        self.counts["frames_with_people" if people else "frames_without_people"] += 1
        self.counts["people_last_frame"] = len(people)
        self.skeleton_publisher.publish(skeleton_array(msg.header, people))
        if self.image_publisher is not None:
            self.image_publisher.publish(to_image_msg(draw_people(image, people), "rgb8", msg.header))
        if self.marker_publisher is None:
            return
        if self.camera is None:
            self.counts["frames_without_markers"] += 1
            return
        if (self.camera.width, self.camera.height) != (image.shape[1], image.shape[0]):
            self.counts["frames_without_markers"] += 1
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but camera_info says "
                             f"{self.camera.width}x{self.camera.height}: no markers for this frame")
        self.marker_publisher.publish(skeleton_markers(msg.header, people, self.camera, self.config["marker_depth_m"],
                                                       self.config["marker_line_width_m"]))

    def diagnostic_status(self):
        status = super().diagnostic_status()
        for key, value in getattr(self, "counts", {}).items():
            status.values.append(KeyValue(key=key, value=str(value)))
        return status


NODE_CLASS = BodyPoseNode
main = make_node_main(BodyPoseNode)
