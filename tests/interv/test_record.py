"""One model record for every artefact: the same model whatever its dtype or device, another
model (another family, other widths, other weights) refused, old files still read."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import interv
from interv.adapters.identity import decode_sample, encode_sample, same_weights
from interv.errors import ModelMismatchError
from interv.record import ModelRecord


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_load_in_another_dtype_is_the_same_model(tiny_dirs, tiny_models, dtype):
    full = tiny_models("llama")
    other = interv.load(tiny_dirs["llama"], device="cpu", dtype=dtype)
    assert other.dtype == getattr(torch, dtype)
    record = ModelRecord.of(full)
    record.check(other)  # made in float32, used in bfloat16 / float16
    ModelRecord.of(other).check(full)  # and the other way round
    if dtype == "bfloat16":  # the fingerprint hashes bfloat16-rounded values
        assert other.fingerprint() == full.fingerprint()
    assert record.compatible(ModelRecord.of(other))


def test_other_families_widths_and_weights_are_refused(tiny_models):
    llama = tiny_models("llama")
    record = ModelRecord.of(llama)
    with pytest.raises(ModelMismatchError, match="architecture 'llama' != 'gpt2'.*d_mlp 64 != 128"):
        record.check(tiny_models("gpt2"))
    with pytest.raises(ModelMismatchError, match="model_type 'llama' != 'qwen2'"):
        record.check(tiny_models("qwen2"))
    values, _ = llama.weight_sample()
    tuned = dataclasses.replace(record, sample=encode_sample(values + 1e-3 * values.abs().max()))
    with pytest.raises(ModelMismatchError, match="weights differ"):
        tuned.check(llama)
    assert not tuned.compatible(record)


def test_rounding_tolerance_is_one_unit_in_the_last_place_of_each_precision():
    x = torch.tensor([0.1234567, -3.0, 1e-6, 0.0])
    assert same_weights(x, "float32", x.to(torch.bfloat16).float(), "bfloat16")
    assert same_weights(
        x.to(torch.float16).float(), "float16", x.to(torch.bfloat16).float(), "bfloat16"
    )
    step = x.abs().clamp(min=1e-3) * 0.02  # well beyond bfloat16's 0.4 %
    assert not same_weights(x, "float32", (x + step).to(torch.bfloat16).float(), "bfloat16")
    assert not same_weights(x, "float32", x + 1e-6, "float32")
    assert not same_weights(x, "float32", x[:3], "float32")  # another sample size


def test_round_trip_and_files_from_before_the_record(tiny_models):
    model = tiny_models("llama")
    record = ModelRecord.of(model)
    assert ModelRecord.from_dict(record.to_dict()) == record
    assert torch.equal(decode_sample(record.sample), model.weight_sample()[0])
    assert ModelRecord.from_dict(None) is None and ModelRecord.from_dict({}) is None
    # vectors and graphs written before the record: name, architecture, widths, fingerprint
    old = ModelRecord.from_dict(
        {
            "name": "x",
            "architecture": "llama",
            "d_model": 32,
            "n_layers": 2,
            "fingerprint": model.legacy_fingerprint(),
        }
    )
    old.check(model)
    with pytest.raises(ModelMismatchError, match="weights differ"):
        dataclasses.replace(old, fingerprint="0" * 16).check(model)
    # patches written before the record: the fingerprint alone
    ModelRecord.from_fingerprint(model.legacy_fingerprint()).check(model)
    # an imported vector that only says its family
    ModelRecord(architecture="llama").check(model)
    with pytest.raises(ModelMismatchError, match="architecture"):
        ModelRecord(architecture="gpt2").check(model)


def test_the_record_is_taken_when_the_model_loads(fresh_tiny):
    """Edits change MLP weights: an edited model keeps its identity, so vectors and other
    patches made for it still apply."""
    model = fresh_tiny("llama")
    before = ModelRecord.of(model)
    with torch.no_grad():
        model.weight("blocks.0.mlp.W_out").add_(1.0)
        model.weight("embed.W_E").add_(1.0)  # even here: the record is of the model as loaded
    assert ModelRecord.of(model) == before
