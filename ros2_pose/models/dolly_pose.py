"""The dolly pose network: a 128x128 ROI crop plus its box coordinates -> 6DoF pose.

Shape after the Isaac 3D pose model (seed 000): an encoder of four convolution layers maps the crop to
a 128-d latent; a small encoder embeds the normalised box coordinates; heads regress rotation and
translation from both; a decoder reconstructs the dolly's *frame without wheels* from the latent
alone (an auxiliary loss on rendered masks), which teaches the encoder to ignore the wheels.

Outputs (all per batch item):
- `rotation_6d` (6): the continuous 6D rotation (Zhou et al.) of the dolly *relative to the ray
  through the crop's centre* (allocentric): a crop shows the object as seen along that ray, so the
  same appearance means the same allocentric rotation wherever the box is in the image.
  `ros2_pose.codecs.dolly_pose.camera_rotation_from_allocentric` turns it into the camera frame.
- `center_crop` (2): where the dolly frame's origin projects in the crop, in crop pixels / 128
  (so 0..1 inside the crop; may leave it at close range).
- `log_depth_ratio` (1): log(z * 128 / fx_crop) — the depth normalised by the crop's virtual focal
  length, which is close to the dolly's metric size whatever its distance, so the target is well
  conditioned (`ros2_pose.codecs.dolly_pose.translation_from_prediction` lifts it back).
- `mask_logits` (1 x 32 x 32): the decoder's wheel-less frame mask (crop coordinates / 4).
"""
from __future__ import annotations

import torch
from torch import nn

from ros2_pose.codecs.dolly_pose import CROP_SIZE, MASK_SIZE

LATENT_SIZE = 128

# Channel widths of the four encoder layers. "half" is the seed's retrained model with half the
# filters in the encoder and decoder.
WIDTHS = {"full": (32, 64, 128, 128), "half": (16, 32, 64, 64)}


def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def up_block(in_ch: int, out_ch: int) -> nn.Sequential:
    # Nearest upsampling + 3x3 convolution: half the cost of a 4x4 transposed convolution on the
    # CPU and no checkerboard artefacts in the mask.
    return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                         nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class DollyPoseNet(nn.Module):
    def __init__(self, width: str | tuple[int, int, int, int] = "full", latent_size: int = LATENT_SIZE,
                 box_features: int = 64, head_features: int = 256):
        super().__init__()
        widths = WIDTHS[width] if isinstance(width, str) else tuple(width)
        if len(widths) != 4:
            raise ValueError(f"the encoder has four layers; got widths {widths}")
        self.widths = widths
        c1, c2, c3, c4 = widths
        # 128 -> 64 -> 32 -> 16 -> 8
        self.encoder = nn.Sequential(conv_block(3, c1), conv_block(c1, c2), conv_block(c2, c3),
                                     conv_block(c3, c4))
        self.to_latent = nn.Sequential(nn.Flatten(), nn.Linear(c4 * 8 * 8, latent_size),
                                       nn.ReLU(inplace=True))
        self.box_encoder = nn.Sequential(nn.Linear(4, box_features), nn.ReLU(inplace=True),
                                         nn.Linear(box_features, box_features), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Linear(latent_size + box_features, head_features),
                                  nn.ReLU(inplace=True), nn.Linear(head_features, 6 + 2 + 1))
        # Decoder from the latent alone: 8x8 -> 16 -> 32, the wheel-less mask at a quarter of the
        # crop's resolution (enough to outline the frame, and cheap to train on the CPU).
        self.from_latent = nn.Sequential(nn.Linear(latent_size, c4 * 8 * 8), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(up_block(c4, c3), up_block(c3, c2), nn.Conv2d(c2, 1, 3, padding=1))
        self.register_buffer("pixel_mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))

    def encode(self, crop: torch.Tensor) -> torch.Tensor:
        """crop: N x 3 x 128 x 128 float in [0, 1] (RGB). Returns the N x 128 latent."""
        return self.to_latent(self.encoder((crop - self.pixel_mean) / self.pixel_std))

    def forward(self, crop: torch.Tensor, box: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.encode(crop)
        out = self.head(torch.cat([latent, self.box_encoder(box)], dim=1))
        c4 = self.widths[3]
        mask_logits = self.decoder(self.from_latent(latent).view(-1, c4, 8, 8))
        return {"rotation_6d": out[:, :6], "center_crop": out[:, 6:8],
                "log_depth_ratio": out[:, 8:9], "mask_logits": mask_logits}
