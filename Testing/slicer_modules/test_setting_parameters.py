"""Parameter-node fields derived from a settings declaration with a group (the knee TrainConfig and its
augmentation settings), on Slicer's real parameterNodeWrapper and MRML."""

from __future__ import annotations

from KneeLandmarksLib.augment import AugmentConfig
from KneeLandmarksLib.train_config import TrainConfig
from LandmarkCoreLib.settings import setting_specs
from LandmarkSlicerLib.parameters import DERIVED, parameter_name, setting_fields, settings_from_parameter_node


def _parameter_node(scene):
    from slicer.parameterNodeWrapper import parameterNodeWrapper

    annotations, defaults = setting_fields(TrainConfig)
    namespace = {"__annotations__": annotations, "__module__": __name__, **defaults}
    wrapper = parameterNodeWrapper(type("TrainParameters", (), namespace))
    return wrapper(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode"))


def test_group_settings_are_fields_of_their_own_and_read_back_into_the_group(scene):
    parameters = _parameter_node(scene)
    assert parameter_name("augment.mixup_alpha") == "augmentMixupAlpha"
    for spec in setting_specs(TrainConfig):
        stored = getattr(parameters, parameter_name(spec.name))
        assert stored == (DERIVED if spec.default is None else spec.default), spec.name
    assert settings_from_parameter_node(TrainConfig, parameters) == TrainConfig()
    parameters.augmentMixupAlpha, parameters.augmentPCutout, parameters.learningRate = 0.0, 0.2, 3e-4
    parameters.width = 16
    expected = TrainConfig(learning_rate=3e-4, width=16, augment=AugmentConfig(mixup_alpha=0.0, p_cutout=0.2))
    reread = type(parameters)(parameters.parameterNode)  # what the MRML node holds
    assert settings_from_parameter_node(TrainConfig, reread) == expected
    parameters.width = DERIVED
    assert settings_from_parameter_node(TrainConfig, parameters).width is None
