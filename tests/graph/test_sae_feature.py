"""SAE-feature graph nodes: the error term is kept, other hooks and indices are refused, saved
graphs find their SAEs."""

from __future__ import annotations

import pytest
import torch

from interv.graph import Graph, SAEFeature


def test_clamping_a_feature_to_its_own_value_changes_nothing(tiny_sae_run):
    model, sae, _, _ = tiny_sae_run
    ids = torch.tensor([model.tokenizer("the cat sat on the mat")["input_ids"]])
    _, cache = model.run_with_cache(ids, [sae.hook_name])
    z = sae.encode(cache[sae.hook_name])  # [1, pos, d_sae]
    feature = int((z[0, -1] > 0).nonzero()[0])
    plain = model.forward(ids)
    # Clamp to the value at the last position; positions where it differs are not selected.
    from interv.graph import positions

    node = SAEFeature(
        sae,
        [feature],
        mode="clamp",
        values=float(z[0, -1, feature]),
        positions=positions.last_prompt_token(),
    )
    torch.testing.assert_close(model.forward(ids, graph=Graph([node])), plain, atol=1e-4, rtol=1e-4)
    lossy = SAEFeature(
        sae,
        [feature],
        mode="clamp",
        values=float(z[0, -1, feature]),
        positions=positions.last_prompt_token(),
        keep_error=False,
    )
    assert not torch.allclose(model.forward(ids, graph=Graph([lossy])), plain, atol=1e-3)
    scaled = SAEFeature(sae, [feature], mode="scale", values=1.0)
    torch.testing.assert_close(
        model.forward(ids, graph=Graph([scaled])), plain, atol=1e-4, rtol=1e-4
    )
    changed = SAEFeature(sae, [feature], mode="clamp", values=float(z[0, -1, feature]) + 5.0)
    assert not torch.allclose(model.forward(ids, graph=Graph([changed])), plain, atol=1e-3)


def test_sae_feature_node_rejects_other_hooks_and_indices(tiny_sae_run):
    from interv.graph import GraphError

    _, sae, _, _ = tiny_sae_run
    with pytest.raises(GraphError, match="out of range"):
        SAEFeature(sae, [64])
    with pytest.raises(GraphError, match="was trained on 'blocks.1.hook_resid_post'"):
        SAEFeature(sae, [1], hook="blocks.0.hook_resid_post")


def test_saved_graph_finds_shipped_and_folder_saes_by_itself(tiny_sae_run, tmp_path):
    from interv.graph import GraphError
    from interv.sae import DEFAULT_SAE, load

    shipped = load(DEFAULT_SAE)
    Graph([SAEFeature(shipped, [3], values=2.0)]).save(tmp_path / "shipped")
    node = Graph.load(tmp_path / "shipped").nodes[0]
    assert node.sae_id == DEFAULT_SAE and node.sae.hook_name == "blocks.12.hook_resid_post"
    torch.testing.assert_close(node.sae.W_dec, shipped.W_dec)
    _, sae, _, folder = tiny_sae_run
    Graph([SAEFeature(sae, [3], values=2.0, sae_id=str(folder))]).save(tmp_path / "folder")
    assert Graph.load(tmp_path / "folder").nodes[0].sae.d_sae == sae.d_sae
    Graph([SAEFeature(sae, [3], values=2.0, sae_id="gone")]).save(tmp_path / "gone")
    with pytest.raises(GraphError, match="neither shipped with interv nor a folder"):
        Graph.load(tmp_path / "gone")
