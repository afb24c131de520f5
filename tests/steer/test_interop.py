"""EasyEdit2 vector folders and files, repeng / llama.cpp GGUF control vectors: read and write."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interv.record import ModelRecord
from interv.steer import library
from interv.steer.interop import export_gguf, load_easyedit, load_gguf, load_pt_vector
from interv.steer.vector import SteeringVector


def _easyedit_folder(root, method="caa", layers=(1, 3), shape=(1, 8)):
    folder = root / "sentiment" / f"{method}_vector"
    folder.mkdir(parents=True)
    expected = {}
    for layer in layers:
        value = torch.randn(*shape, generator=torch.Generator().manual_seed(layer))
        torch.save(value, folder / f"layer_{layer}.pt")  # EasyEdit2 writes plain tensors
        expected[f"blocks.{layer}.hook_resid_post"] = value.reshape(-1)
    return folder, expected


def test_easyedit_folder_dataset_folder_and_single_file(tmp_path):
    folder, expected = _easyedit_folder(tmp_path)
    for source in (folder, folder.parent):
        vector = load_easyedit(source)
        assert vector.method == "caa" and vector.dataset == "sentiment"
        assert vector.hooks == sorted(expected)
        for hook, value in expected.items():
            assert torch.equal(vector.directions[hook], value)
    single = load_pt_vector(folder / "layer_3.pt")
    assert single.hooks == ["blocks.3.hook_resid_post"]
    assert isinstance(library.load(folder.parent, "caa"), SteeringVector)


def test_easyedit_errors(tmp_path):
    folder, _ = _easyedit_folder(tmp_path, "caa")
    _easyedit_folder(tmp_path / "b", "caa", shape=(2, 4))
    with pytest.raises(ValueError, match="not a vector"):
        load_easyedit(tmp_path / "b" / "sentiment")
    (folder.parent / "repe_vector").mkdir()
    with pytest.raises(ValueError, match="expected one EasyEdit2 vector folder"):
        load_easyedit(folder.parent)
    bad = tmp_path / "pickled" / "caa_vector"
    bad.mkdir(parents=True)
    torch.save({"not": "a tensor", "obj": object}, bad / "layer_2.pt")  # not loadable safely
    with pytest.raises(ValueError, match="cannot load safely|not a tensor"):
        load_easyedit(bad)
    with pytest.raises(FileNotFoundError):
        load_easyedit(tmp_path / "missing")


def test_gguf_round_trip_keeps_metadata_and_bakes_the_scale(tmp_path):
    g = torch.Generator().manual_seed(0)
    vector = SteeringVector(
        {f"blocks.{i}.hook_resid_post": torch.randn(8, generator=g) for i in (2, 5)},
        method="caa",
        dataset="sentiment",
        recommended_scale=3.0,
        model=ModelRecord(name="tiny", architecture="llama"),
    )
    path = export_gguf(vector, tmp_path / "v.gguf")
    loaded = load_gguf(path)
    assert loaded.hooks == vector.hooks and loaded.method == "caa" and loaded.dataset == "sentiment"
    for hook in vector.hooks:
        torch.testing.assert_close(loaded.directions[hook], 3.0 * vector.directions[hook])
    assert loaded.recommended_scale == 1.0 and loaded.meta["gguf_scale"] == 3.0
    assert isinstance(library.load(path), SteeringVector)


def test_gguf_layer_convention_and_errors(tmp_path):
    pre = SteeringVector({"blocks.3.hook_resid_pre": torch.ones(4)})
    assert load_gguf(export_gguf(pre, tmp_path / "pre.gguf", 1.0)).hooks == [
        "blocks.2.hook_resid_post"
    ]
    with pytest.raises(ValueError, match="cannot steer block 0"):
        export_gguf(
            SteeringVector({"blocks.0.hook_resid_post": torch.ones(4)}), tmp_path / "x.gguf"
        )
    with pytest.raises(ValueError, match="steer block outputs"):
        export_gguf(SteeringVector({"blocks.1.hook_mlp_out": torch.ones(4)}), tmp_path / "x.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not gguf")
    with pytest.raises(ValueError, match="not a GGUF file"):
        load_gguf(tmp_path / "junk.gguf")


def test_repeng_style_gguf_without_interv_metadata(tmp_path):
    """A control vector written as repeng does (no interv metadata) reads as directions per
    layer."""
    import gguf

    path = tmp_path / "repeng.gguf"
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", "llama")
    writer.add_uint32("controlvector.layer_count", 2)
    values = {layer: np.arange(4, dtype=np.float32) * layer for layer in (1, 2)}
    for layer, value in values.items():
        writer.add_tensor(f"direction.{layer}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    vector = load_gguf(path)
    assert vector.method == "gguf" and vector.model == ModelRecord(architecture="llama")
    assert vector.hooks == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]
    assert torch.equal(vector.directions["blocks.2.hook_resid_post"], torch.tensor(values[2]))
