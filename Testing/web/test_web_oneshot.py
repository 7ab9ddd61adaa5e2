"""One-shot page in a real browser on real mouse skulls: reference and validation from the server's data
folder, landmarks uploaded, SOI by threshold, a long training cancelled, a small model trained in the
background, detection on another skull, the downloaded .mrk.json checked against that skull's landmarks."""

from __future__ import annotations

import numpy as np
import pytest
from web_helpers import choose, downloaded_landmarks, screenshot

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

REFERENCE, VALIDATION, TARGET = "C57BL6_J_", "BALB_CBYJ_", "A_J_"
#: A 2-epoch, width-8 model (minutes on 2 cores); the README's 25-epoch width-32 model scores 0.30 mm on A_J_.
ERROR_BOUND_MM = 1.0
TRAIN_MS, STEP_MS = 400_000, 120_000


def wait_message(page, text: str, timeout: int = STEP_MS) -> None:
    page.wait_for_selector(f"#oneshot-message:has-text('{text}')", timeout=timeout)


def test_oneshot_train_detect_download(page, web_server, data_root, tmp_path):
    from LandmarkCoreLib.landmarks import read_landmarks

    mouse = data_root / "mouse_skull_microct"
    page.goto(web_server(mouse))
    choose(page, "oneshot-reference", f"images/{REFERENCE}.nii.gz")
    page.click("#oneshot-load-reference")
    wait_message(page, f"Reference {REFERENCE} loaded")
    page.locator("#oneshot-landmarks-upload").set_input_files(
        str(mouse / "landmarks" / f"{REFERENCE}.mrk.json")
    )
    page.click("#oneshot-import-landmarks")
    wait_message(page, "45 reference landmarks")
    choose(page, "oneshot-validation", f"images/{VALIDATION}.nii.gz")
    page.fill("#oneshot-epochs", "500")
    page.click("#oneshot-train")
    page.wait_for_selector("#oneshot-cancel:not([disabled])", timeout=STEP_MS)
    page.click("#oneshot-cancel")
    wait_message(page, "Error: ", STEP_MS)
    assert "cancel" in page.inner_text("#oneshot-message").lower()
    page.fill("#oneshot-epochs", "2")
    page.fill("#oneshot-width", "8")
    page.click("#oneshot-train")
    wait_message(page, "Trained:", TRAIN_MS)
    choose(page, "oneshot-target", f"images/{TARGET}.nii.gz")
    page.click("#oneshot-detect")
    wait_message(page, f"45 landmarks detected on {TARGET}", TRAIN_MS)
    page.wait_for_selector("#oneshot-qc", timeout=STEP_MS)
    page.locator("#oneshot-truth-upload").set_input_files(str(mouse / "landmarks" / f"{TARGET}.mrk.json"))
    page.click("#oneshot-evaluate")
    page.wait_for_selector("#oneshot-error:has-text('Mean radial error')", timeout=STEP_MS)
    screenshot(page, "oneshot")
    downloaded = downloaded_landmarks(page, "oneshot-download", tmp_path / "detected.mrk.json", STEP_MS)
    truth = read_landmarks(mouse / "landmarks" / f"{TARGET}.mrk.json", "truth")
    found = downloaded.subset(truth.labels)
    error = float(np.linalg.norm(found.points - truth.points, axis=1).mean())
    print(
        f"one-shot: mean radial error {error:.3f} mm on {TARGET}; page: {page.inner_text('#oneshot-error')}"
    )
    assert error < ERROR_BOUND_MM
