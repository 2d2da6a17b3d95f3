"""A tiny node on LifecycleNodeBase for the tests: echoes images (same header) and can be told to fail.

Run as a script it is a real node executable (`make_node_main`), used by the SIGTERM test.
"""
import sys

from sensor_msgs.msg import Image

from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.node_base import DropFrame, LifecycleNodeBase, make_node_main


class EchoNode(LifecycleNodeBase):
    NODE_NAME = "echo"
    PARAMETERS = {
        "scale": (2, "multiplies every pixel (uint8 wrap-around) before echoing"),
        "gain": (1.0, "unused float, for type coercion tests"),
        "classes": ([], "class names; empty keeps all", str),
        "fail_on_encoding": ("", "images with this encoding make the callback raise"),
        "drop_on_encoding": ("", "images with this encoding are dropped (DropFrame)"),
    }

    def on_configure_node(self):
        self.echo_publisher = self.create_output_publisher(Image, "echo/image")
        self.activations = getattr(self, "activations", 0)

    def on_activate_node(self):
        self.create_image_subscription("image", self.on_image)
        self.activations += 1
        print("echo active", flush=True)

    def on_cleanup_node(self):
        print("echo released", flush=True)

    def on_image(self, msg, image):
        if msg.encoding == self.config["fail_on_encoding"]:
            raise RuntimeError(f"refusing {msg.encoding} images")
        if msg.encoding == self.config["drop_on_encoding"]:
            raise DropFrame(f"{msg.encoding} is dropped")
        with self.timed("scale"):
            scaled = (image * self.config["scale"]).astype(image.dtype)
        self.echo_publisher.publish(to_image_msg(scaled, msg.encoding, self.output_header(msg.header)))


main = make_node_main(EchoNode)

if __name__ == "__main__":
    sys.exit(main())
