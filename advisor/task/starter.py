"""The starter task written by `advisor init`: small, real, and accepted by `assess` as is."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import InputError

TASK_YAML = """\
# A starter task: sort customer feedback into praise, complaint or question.
# Replace data.jsonl with your own rows ({"text": ..., "label": ...}) and run:
#   advisor assess task.yaml
name: feedback-triage
type: classification
model: smollm2-135m-instruct      # the embedded model; or a local folder, or a Hugging Face id
instruction: Classify the customer's message by what it is.
data:
  path: data.jsonl                # one file, split into train and test with the seed below
  test_size: 0.25
  fields: {input: text, target: label}
labels: [praise, complaint, question]
rungs:                            # the ladder, cheapest first
  - zero_shot                     # the instruction and the message: pick the likeliest label
  - {rung: few_shot, k: 6, balanced: true}   # six labelled messages in the prompt, two per label
  - {rung: rag, top_k: 4}         # the four labelled messages most like this one, retrieved for it
  # - {rung: lora, r: 8}          # a trained adapter: minutes on a CPU, and 36 rows teach it little
seed: 0
"""

ROWS = [
    ("praise", "Love the new update, everything loads so much faster now."),
    ("praise", "Your support agent Maria was incredibly patient with me. Thank you!"),
    ("praise", "Best purchase I made this year, works exactly as described."),
    ("praise", "The setup took two minutes. Really impressed."),
    ("praise", "Great app, my whole team uses it every day."),
    ("praise", "Thanks for fixing the sync bug so quickly!"),
    ("praise", "I recommended you to three friends already."),
    ("praise", "Clean design, no clutter, does what it says."),
    ("praise", "Delivery was a day early and the packaging was perfect."),
    ("praise", "Honestly the best customer service I have had in years."),
    ("praise", "The dark mode is gorgeous, thank you for adding it."),
    ("praise", "Five stars. Simple, fast, reliable."),
    ("praise", "You guys nailed the new dashboard."),
    ("praise", "Really appreciate the free upgrade, made my week."),
    ("praise", "Works flawlessly on my old laptop too, well done."),
    ("praise", "Kudos to the team, the export feature is exactly what we needed."),
    ("complaint", "The app crashed three times today and I lost my work."),
    ("complaint", "I was charged twice this month and nobody answers my emails."),
    ("complaint", "Your latest update broke the search. Terrible."),
    ("complaint", "The package arrived damaged and the box was soaked."),
    ("complaint", "Waited 45 minutes on hold just to be disconnected."),
    ("complaint", "Login keeps failing even after resetting my password."),
    ("complaint", "Way too many notifications, it is driving me crazy."),
    ("complaint", "The product stopped working after one week."),
    ("complaint", "Your website is unusable on mobile."),
    ("complaint", "I cancelled but you still took money from my card."),
    ("complaint", "Support closed my ticket without fixing anything."),
    ("complaint", "Prices went up again and the service got worse."),
    ("complaint", "The battery drains in two hours, unacceptable."),
    ("complaint", "Files I uploaded yesterday are just gone."),
    ("complaint", "The new layout is confusing and slower than before."),
    ("complaint", "Still no refund after three weeks of waiting."),
    ("question", "How do I export my data to a spreadsheet?"),
    ("question", "Is there a student discount?"),
    ("question", "Can I use one account on two devices?"),
    ("question", "When will the Android version support offline mode?"),
    ("question", "Where can I find my invoices?"),
    ("question", "Do you ship to Canada?"),
    ("question", "What happens to my files if I downgrade my plan?"),
    ("question", "Is it possible to change the email on my account?"),
    ("question", "How long does a refund usually take?"),
    ("question", "Does the app work without an internet connection?"),
    ("question", "Can I invite people outside my company to a project?"),
    ("question", "What is the maximum file size I can upload?"),
    ("question", "Is two-factor authentication available?"),
    ("question", "How do I cancel my subscription?"),
    ("question", "Do you offer an API for developers?"),
    ("question", "Which browsers do you support?"),
]


def write_starter(folder: Path, force: bool = False) -> list[Path]:
    """Write task.yaml and data.jsonl into folder; existing files are kept unless forced."""
    task_path, data_path = folder / "task.yaml", folder / "data.jsonl"
    existing = [p for p in (task_path, data_path) if p.exists()]
    if existing and not force:
        raise InputError(f"{existing[0]}: already exists; use --force to overwrite it")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: expected a folder")
    folder.mkdir(parents=True, exist_ok=True)
    task_path.write_text(TASK_YAML, encoding="utf-8")
    lines = [json.dumps({"id": f"f{i:03d}", "text": text, "label": label}) for i, (label, text) in enumerate(ROWS, 1)]
    data_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [task_path, data_path]
