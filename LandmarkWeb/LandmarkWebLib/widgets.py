"""The controls every page uses: a file chooser (data folder or upload), a button, a message line."""

from __future__ import annotations

from typing import Any


def file_chooser(session: Any, prefix: str, key: str, label: str, suffixes: tuple[str, ...]) -> None:
    """A data-folder select and an upload field; ``Session.input_file`` takes the upload if one was made."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    session.state[f"{prefix}_{key}_items"] = session.data.list(suffixes)
    session.state[f"{prefix}_{key}"] = None

    def received(files: list[dict]) -> None:
        session.uploaded[(prefix, key)] = files[0] if files else None

    v3.VAutocomplete(
        label=f"{label} (data folder)",
        v_model=(f"{prefix}_{key}",),
        items=(f"{prefix}_{key}_items",),
        density="compact",
        hide_details=True,
        clearable=True,
        id=f"{prefix}-{key}",
    )
    html.Div(f"or upload {label.lower()}:", classes="text-caption")
    html.Input(type="file", change=(received, "[$event.target.files]"), id=f"{prefix}-{key}-upload",
               classes="text-caption mb-1")  # fmt: skip


def button(text: str, click: Any, element_id: str, disabled: str = "false") -> None:
    from trame.widgets import vuetify3 as v3

    v3.VBtn(text, click=click, id=element_id, disabled=(disabled,), size="small", classes="ma-1")


def message(prefix: str) -> None:
    """The page's status line and progress bar."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    v3.VProgressLinear(v_if=(f"{prefix}_busy",), model_value=(f"{prefix}_progress",), height=6)
    html.Div(f"{{{{ {prefix}_message }}}}", id=f"{prefix}-message", classes="text-body-2 my-2")


def download_button(server: Any, text: str, handler: Any, element_id: str) -> None:
    """A button whose click downloads ``handler()``'s {name, content} through the browser."""
    trigger = server.trigger_name(handler)
    button(
        text,
        f"trigger('{trigger}').then((f) => f && utils.download(f.name, f.content, 'application/json'))",
        element_id,
    )
