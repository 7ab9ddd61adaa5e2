"""OneShotModel: trained U-Net weights, full configuration, and the reference data detection needs
(working-grid image and SOI patches, registration patch, landmarks). Saved with LandmarkCoreLib.modelfile."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkCoreLib.modelfile import ModelFile, load_model_file, save_model_file

from .config import DetectionConfig, TrainingConfig
from .unet import ShallowUNet

MODEL_KIND = "oneshot-model"


def image_to_record(image: sitk.Image) -> dict[str, Any]:
    return {
        "array": sitk.GetArrayFromImage(image),
        "origin": np.asarray(image.GetOrigin()),
        "spacing": np.asarray(image.GetSpacing()),
        "direction": np.asarray(image.GetDirection()),
    }


def record_to_image(record: dict[str, Any]) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(record["array"]))
    image.SetOrigin([float(v) for v in record["origin"]])
    image.SetSpacing([float(v) for v in record["spacing"]])
    image.SetDirection([float(v) for v in record["direction"]])
    return image


@dataclass
class OneShotModel:
    training: TrainingConfig
    detection: DetectionConfig
    weights: dict[str, torch.Tensor]
    cube_size: int  # working grid edge (voxels)
    reference_centre: np.ndarray  # SOI centre of mass (mm)
    reference_axes: np.ndarray  # (3, 3) reference image axes
    reference_fov_offset: np.ndarray  # SOI centre - field-of-view centre, in reference image axes (mm)
    reference_joint_mass_mm3: float  # Eq. 1 probability mass of the trained net on the reference patch
    reference_joint_concentration: float  # and its concentration (localization.concentration)
    reference_patch: np.ndarray  # prepared reference image on the working grid (z, y, x)
    reference_soi_patch: np.ndarray  # SOI mask on the working grid (z, y, x)
    registration_patch: sitk.Image  # prepared reference image around the landmarks, registration spacing
    landmarks: LandmarkSet
    reference_mirror: np.ndarray  # (3, 3) reflection across the reference's symmetry plane (about its centre)
    derivation: dict[str, Any] = field(default_factory=dict)  # scale inputs and the settings derived
    training_summary: dict[str, Any] = field(default_factory=dict)

    def network(self) -> ShallowUNet:
        net = ShallowUNet(self.training.width)
        net.load_state_dict(self.weights)
        return net.eval()

    def save(self, path: str | os.PathLike) -> None:
        config = {
            "training": self.training.to_dict(),
            "detection": self.detection.to_dict(),
            "cube_size": self.cube_size,
            "reference_joint_mass_mm3": self.reference_joint_mass_mm3,
            "reference_joint_concentration": self.reference_joint_concentration,
            "labels": self.landmarks.labels,
            "descriptions": self.landmarks.descriptions,
            "landmarks_name": self.landmarks.name,
            "derivation": self.derivation,
            "training_summary": self.training_summary,
        }
        tensors = {
            "weights": self.weights,
            "reference_centre": self.reference_centre,
            "reference_axes": self.reference_axes,
            "reference_fov_offset": self.reference_fov_offset,
            "reference_patch": self.reference_patch.astype(np.float32),
            "reference_soi_patch": self.reference_soi_patch.astype(np.uint8),
            "registration_patch": image_to_record(self.registration_patch),
            "landmarks": self.landmarks.points,
            "reference_mirror": self.reference_mirror,
        }
        save_model_file(path, ModelFile(MODEL_KIND, config, tensors))

    @classmethod
    def load(cls, path: str | os.PathLike) -> OneShotModel:
        stored = load_model_file(path, MODEL_KIND)
        try:
            c, t = stored.config, stored.tensors
            model = cls(
                training=TrainingConfig.from_dict(c["training"]),
                detection=DetectionConfig.from_dict(c["detection"]),
                weights=t["weights"],
                cube_size=int(c["cube_size"]),
                reference_centre=t["reference_centre"].numpy(),
                reference_axes=t["reference_axes"].numpy(),
                reference_fov_offset=t["reference_fov_offset"].numpy(),
                reference_joint_mass_mm3=float(c["reference_joint_mass_mm3"]),
                reference_joint_concentration=float(c["reference_joint_concentration"]),
                reference_patch=t["reference_patch"].numpy(),
                reference_soi_patch=t["reference_soi_patch"].numpy(),
                registration_patch=record_to_image(
                    {k: v.numpy() for k, v in t["registration_patch"].items()}
                ),
                landmarks=LandmarkSet(
                    c["labels"], t["landmarks"].numpy(), c["descriptions"], c["landmarks_name"]
                ),
                reference_mirror=t["reference_mirror"].numpy(),
                derivation=c.get("derivation", {}),
                training_summary=c.get("training_summary", {}),
            )
            model.network()
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise ModelFileError(
                f"model file '{path}': incomplete or inconsistent one-shot model ({exc})"
            ) from None
        return model
