"""Is there a radiograph in the pixels, at the pixel size given? Checks of the image at stage 2's pixel
size, before any network runs: blank or nearly blank images, images whose last rows or columns are one
constant value (what a truncated JPEG decodes to), and uncorrelated noise (neighbouring pixels of a
radiograph at 0.6 mm are strongly correlated: 0.95 or more on the ISBI films, about 0 for noise). After
the networks, for a result that does not look like a right-facing film (the pipeline's second pass): the
film read at half and at double its pixel size, as given or mirrored, must not give stage 2 a clearly
higher heatmap confidence than the result accepted (:func:`check_pixel_size`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from LandmarkCoreLib.errors import InputError

#: a constant band along one edge covering more than this share of the image is refused
MAX_CONSTANT_EDGE_FRACTION = 0.1
#: neighbouring-pixel correlation below this is refused as noise
MIN_NEIGHBOUR_CORRELATION = 0.5
#: the pixel size is also tried times these factors (a pixel size read or given 2x wrong)
PIXEL_SIZE_FACTORS = (0.5, 2.0)


def check_image_content(array: np.ndarray, what: str = "image") -> None:
    """Raise :class:`InputError` naming ``what`` when ``array`` (rows, cols) holds no usable radiograph."""
    if not np.isfinite(array).all():
        raise InputError(what, "has non-finite (NaN or infinite) pixel values")
    low, high = np.percentile(array, [0.5, 99.5])
    if high - low <= 1e-6 * max(abs(float(high)), 1.0):
        raise InputError(what, f"is blank (practically all pixels are {float(np.median(array)):g})")
    tolerance = 1e-3 * (high - low)
    band = constant_edge_fraction(array, tolerance)
    if band > MAX_CONSTANT_EDGE_FRACTION:
        raise InputError(
            what,
            f"{100 * band:.0f} % of the image along one edge is a single constant value: a truncated or "
            "damaged file?",
        )
    correlation = neighbour_correlation(array)
    if correlation < MIN_NEIGHBOUR_CORRELATION:
        raise InputError(
            what,
            f"looks like noise, not a radiograph (neighbouring pixels correlate {correlation:.2f}; "
            f"radiographs {MIN_NEIGHBOUR_CORRELATION} or more)",
        )


def constant_edge_fraction(array: np.ndarray, tolerance: float) -> float:
    """The largest share of rows (or columns) that are constant, counted inwards from one edge."""
    shares = []
    for lines in (array, array.T):  # rows, then columns
        constant = np.ptp(lines, axis=1) <= tolerance
        for ordered in (constant, constant[::-1]):
            run = np.argmin(ordered) if not ordered.all() else len(ordered)
            shares.append(run / len(ordered))
    return max(shares)


def neighbour_correlation(array: np.ndarray) -> float:
    """The smaller of the row-wise and column-wise lag-1 correlation coefficients."""
    values = []
    for a, b in ((array[:, :-1], array[:, 1:]), (array[:-1], array[1:])):
        a, b = a - a.mean(), b - b.mean()
        denominator = np.sqrt((a * a).sum() * (b * b).sum())
        values.append(float((a * b).sum() / denominator) if denominator > 0 else 0.0)
    return min(values)


def check_pixel_size(
    confidence: float, confidence_at: Callable[[float], float], pixel_size_mm: float, bound: float
) -> None:
    """Raise :class:`InputError` when stage 2's heatmap confidence with the film read at a pixel size of
    ``pixel_size_mm`` times one of :data:`PIXEL_SIZE_FACTORS` (``confidence_at(factor)``) exceeds
    ``bound`` times ``confidence``, the one at the pixel size given."""
    for factor in PIXEL_SIZE_FACTORS:
        other = confidence_at(factor)
        if other > bound * confidence:
            raise InputError(
                "image",
                f"the pixel size ({pixel_size_mm:g} mm) looks wrong: read at {factor * pixel_size_mm:g} mm "
                f"the landmarks are found {other / confidence:.1f} times as confidently (stage-2 heatmap "
                f"confidence {other:.4f} vs {confidence:.4f}; at most {bound:.2f} times expected): give "
                "the film's true pixel size (--pixel-size)",
            )
