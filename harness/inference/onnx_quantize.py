"""An exported graph with int8 weights: onnxruntime's dynamic quantization, the layers it would spoil kept float.

Dynamic quantization stores each linear layer's weights in int8 and quantizes its input per batch at run time,
one scale for the whole input. Where a few activations are huge, that scale leaves the others almost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.inference.onnx_graph import OUTPUT

# Linear layers int8 keeps in float32, by module name. The MLP's down projection reads the activations with the
# largest outliers: on SmolLM2-135M, quantizing only those 30 layers moved the log-probabilities by up to 17 nats
# and changed the top token at half the positions, while each other kind of projection alone moved them by 1.5-3.5
# (the output head is kept too: it runs at the kept positions only, and it sets every label's score).
FLOAT_MODULES = ("down_proj",)
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"  # the module path torch's exporter writes on every node


@dataclass(frozen=True)
class Int8Layers:
    """The graph's linear layers (MatMul nodes with a weight) by what quantization does to them."""

    quantized: tuple[str, ...]
    kept_float: tuple[str, ...]


def quantize_int8(source: Path, target: Path) -> Int8Layers:
    """Quantize a float32 graph's linear layers to int8 weights, all but those `int8_layers` keeps in float32."""
    layers = int8_layers(source)
    quantize_dynamic_int8(source, target, keep_float=layers.kept_float)
    return layers


def quantize_dynamic_int8(source: Path, target: Path, keep_float: Sequence[str] = ()) -> None:
    """onnxruntime's dynamic int8 quantization of every MatMul's weights but the nodes in `keep_float`; its
    pre-processing (shape inference and graph optimisation) runs first, as its quantizer asks."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(target.stem + ".pre.onnx")
    try:
        quant_pre_process(
            str(source),
            str(prepared),
            skip_symbolic_shape=True,
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            external_data_location=prepared.name + ".data",
        )
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(keep_float),
            use_external_data_format=True,
        )
    finally:
        prepared.unlink(missing_ok=True)
        prepared.with_name(prepared.name + ".data").unlink(missing_ok=True)


def int8_layers(graph: Path) -> Int8Layers:
    """Which linear layers int8 quantizes: every one but the output head and the modules FLOAT_MODULES names
    (found by the module path the exporter writes on each node)."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    weights = {tensor.name for tensor in model.graph.initializer}
    quantized: list[str] = []
    kept: list[str] = []
    for node in model.graph.node:
        head = OUTPUT in node.output  # its weight may be a transposed embedding, not a stored tensor
        if node.op_type != "MatMul" or not (head or set(node.input) & weights):
            continue
        scopes = next((p.value for p in node.metadata_props if p.key == _NAME_SCOPES), "")
        (kept if head or any(f".{name}'" in scopes for name in FLOAT_MODULES) else quantized).append(node.name)
    return Int8Layers(tuple(quantized), tuple(kept))
