"""Typed errors that carry a message a user can act on (which input, what is wrong)."""

from __future__ import annotations


class LandmarkError(Exception):
    """Base class of every error this extension raises on purpose."""


class InputError(LandmarkError, ValueError):
    """An input (file, image, landmark set, mask, parameter) is missing or unusable.

    The message names the input and says what is wrong with it, e.g.
    ``"reference SOI mask 'ref_mask.nii.gz': no foreground voxels"``.
    """

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


class ModelFileError(LandmarkError, ValueError):
    """A model file is corrupt, truncated, foreign, or made for another module."""


class Cancelled(LandmarkError):  # noqa: N818 (contract name; not an error of the input)
    """Long work stopped because the user asked it to; what was saved stays saved."""
