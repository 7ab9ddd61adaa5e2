"""The settings of one KNEEL training stage, declared once: the ``knee-landmarks train`` flags and their
range checks are derived from it, and a model file records them (nested as :func:`settings_to_dict`
writes them) with each stage it trained."""

from __future__ import annotations

from dataclasses import dataclass

from LandmarkCoreLib.networks import BLOCKS
from LandmarkCoreLib.settings import seed_setting, setting, setting_group, settings_to_dict

from .augment import AugmentConfig
from .losses import LOSSES

PRESET = "the preset's"


@dataclass
class TrainConfig:
    stage: int = setting(
        2, choices=(1, 2, 3), help="1: ROI centre, 2: all landmarks in the ROI, 3: a patch per landmark"
    )
    epochs: int = setting(60, minimum=1, maximum=100000, help="training epochs")
    batch_size: int = setting(8, minimum=1, maximum=4096, help="crops per batch")
    learning_rate: float = setting(1e-3, minimum=1e-7, maximum=1.0, flag="--lr", help="Adam learning rate")
    loss: str = setting("wing", choices=LOSSES, help="coordinate loss")
    wing_width: float = setting(15.0, minimum=1e-3, maximum=1000.0, help="wing loss width w (input pixels)")
    wing_curvature: float = setting(3.0, minimum=1e-3, maximum=1000.0, help="wing loss curvature C")
    block: str = setting("hmp", choices=BLOCKS, help="residual block")
    width: int | None = setting(None, minimum=1, maximum=256, none_means=PRESET, help="hourglass width N")
    depth: int | None = setting(None, minimum=1, maximum=8, none_means=PRESET, help="hourglass depth d")
    dropout: float = setting(0.25, minimum=0.0, maximum=0.95, help="dropout probability")
    seed: int = seed_setting()
    n_folds: int = setting(
        1, minimum=1, maximum=100, flag="--folds", help="k of a k-fold split (1: train on everything)"
    )
    fold: int = setting(0, minimum=0, maximum=99, help="the validation fold (of a k-fold split)")
    threads: int | None = setting(
        None, minimum=1, maximum=10**6, none_means="torch's", help="torch CPU threads while training"
    )
    stage1_all_landmarks: bool = setting(
        False, help="stage 1 with every landmark as target instead of the ROI centre (the one-stage ablation)"
    )
    augment: AugmentConfig = setting_group(AugmentConfig)

    def to_config(self) -> dict:
        return settings_to_dict(self)
