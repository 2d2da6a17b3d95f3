"""dolly_detector: camera image -> dolly detections (and optionally the 128x128 ROI crop).

The first stage of the dolly pipeline as a node of its own, for robots that want boxes only or run
the pose stage elsewhere. (`dolly_pose` runs the same detector internally, avoiding a second image
transfer.)

Subscribes: `image` (sensor_msgs/Image). Publishes: `dolly/detections`
(ros2_pose_msgs/Detection2DArray; empty when nothing scores above `score_threshold`),
`dolly/crop` (sensor_msgs/Image rgb8 128x128, only when `publish_crop`), /diagnostics.
"""
from __future__ import annotations

from sensor_msgs.msg import Image

from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.codecs.dolly_pose import CROP_SIZE
from ros2_pose.pipelines.dolly import DollyPipeline
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.message_builders import detection_array
from ros2_pose.ros.model_loading import MODEL_PARAMETERS, load_runner
from ros2_pose.ros.node_base import LifecycleNodeBase, make_node_main

CLASS_ID = "dolly"


def detections_message(header, box, score: float, score_threshold: float):
    """A Detection2DArray holding the box when it scores at least `score_threshold`, else empty."""
    keep = box is not None and score >= score_threshold
    return detection_array(header, [box] if keep else [], [score] if keep else [], CLASS_ID)


class DollyDetectorNode(LifecycleNodeBase):
    NODE_NAME = "dolly_detector"
    CONFIG_FILE = "dolly_pose.yaml"
    PARAMETERS = {
        "detector_model": ("dolly_detector", "shipped model name (models/<name>) or folder of the detector"),
        **MODEL_PARAMETERS,
        "score_threshold": (0.5, "detections below this score are not published"),
        "publish_crop": (False, "also publish the 128x128 black-padded ROI crop on dolly/crop"),
    }

    def on_configure_node(self):
        from ros2_pose_msgs.msg import Detection2DArray

        self.detection_publisher = self.create_output_publisher(Detection2DArray, "dolly/detections")
        self.crop_publisher = (self.create_output_publisher(Image, "dolly/crop")
                               if self.config["publish_crop"] else None)

    def on_activate_node(self):
        # Only the detection half of the pipeline runs here.
        self.pipeline = DollyPipeline(load_runner(self, self.config["detector_model"]), pose=None,
                                      score_threshold=self.config["score_threshold"])
        self.create_image_subscription("image", self.on_image, desired_encoding="rgb8")

    def on_cleanup_node(self):
        self.pipeline = None

    def on_image(self, msg: Image, image):
        with self.timed("pipeline"):
            box, score = self.pipeline.detect(image)
        threshold = self.config["score_threshold"]
        self.detection_publisher.publish(detections_message(msg.header, box, score, threshold))
        if self.crop_publisher is not None and score >= threshold:
            with self.timed("pipeline"):
                crop = RoiCrop.from_box(box, size=CROP_SIZE).apply(image)
            self.crop_publisher.publish(to_image_msg(crop, "rgb8", msg.header))


NODE_CLASS = DollyDetectorNode
main = make_node_main(DollyDetectorNode)
