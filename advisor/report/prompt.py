"""`advisor prompt` on a terminal: the conversation, the prompt text, its tokens and the answer, as plain Text.

Everything here comes from the user's data (inputs, labels, demonstrations, passages), which may hold
`[...]`: it is assembled as rich Text, never parsed as markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from advisor.measure.prompt_view import PromptView, ShownPrompt

MODES = {"score": "the likeliest label, scored", "generate": "generated"}


def prompt_text(view: PromptView) -> Group:
    """The whole view, section by section."""
    parts: list[Any] = [_heading(view)]
    parts.extend(Text(note, style="yellow") for note in view.notes)
    for number, prompt in enumerate(view.prompts, start=1):
        parts.extend(_prompt(prompt, number if len(view.prompts) > 1 else None))
    if view.answer is not None:
        parts.append(_heading_line("answer"))
        how = MODES.get(view.mode or "", view.mode or "")
        answer = Text(view.answer, style="bold") if view.answer else Text("(nothing)", style="dim")
        parts.append(Text.assemble(answer, f"   ({how}; target: ", view.target, ")"))
        if view.prompt_tokens is not None:
            parts.append(Text(f"prompt tokens, as the model counted them: {view.prompt_tokens}"))
    return Group(*parts)


def _heading(view: PromptView) -> Text:
    options = ", ".join(f"{key}={value}" for key, value in view.options.items())
    text = Text.assemble(
        (f"{view.task}", "bold"),
        f" · rung {view.rung} ({view.kind}) · test example ",
        (view.example_id, "bold"),
        f"\nanswered by {view.answered_by}\noptions: {options}",
    )
    if view.chosen_on_validation is not None:
        chosen = ", ".join(f"{key}={value}" for key, value in view.chosen_on_validation.items())
        text.append(f"\nchosen on validation: {chosen}")
    return text


def _prompt(prompt: ShownPrompt, number: int | None) -> list[Any]:
    label = f" {number}" if number is not None else ""
    sections: list[Any] = [_heading_line(f"messages{label}")]
    for message in prompt.messages:
        sections.append(Text(message["role"], style="bold cyan"))
        sections.append(Text(message["content"]))
    how = "after the chat template" if prompt.chat else "plain text, no chat template"
    sections.append(_heading_line(f"prompt text{label} ({how}): {prompt.tokens} tokens"))
    sections.append(Text(prompt.text))
    return sections


def _heading_line(title: str) -> Text:
    # a short rule, not the terminal's width: the view is often piped or pasted into an issue
    return Text(f"\n── {title} ──", style="bold")
