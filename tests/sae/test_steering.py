"""SAE-feature steering through graphs (error term kept) and STA's feature selection."""

from __future__ import annotations

import pytest
import torch
from interv.sae import SAEError
from interv.sae.steering import select_features

from interv.data.steering import ContrastPair
from interv.graph import Graph, SAEFeature

PAIRS = [
    ContrastPair("good great happy lovely", "bad awful sad horrible", prompt=f"Item {i}:")
    for i in range(6)
]


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


def test_select_features_by_amplitude_and_frequency():
    act = torch.tensor([3.0, -2.0, 0.1, 1.0, -0.5, 0.0])
    freq = torch.tensor([0.9, -0.8, 0.9, -0.5, -0.1, 0.0])
    mask = select_features(act, freq, trim=0.5)
    # top half by |act| = {0, 1, 3}; by agreeing frequency = {0, 1, 2}; both: {0, 1}
    assert mask.nonzero().flatten().tolist() == [0, 1]
    assert select_features(act, freq, mode="only_act", trim=0.5).nonzero().flatten().tolist() == [
        0,
        1,
        3,
    ]
    assert select_features(act, freq, mode="only_freq", trim=0.5).nonzero().flatten().tolist() == [
        0,
        1,
        2,
    ]
    assert select_features(act, freq, trim=0.0, top_k=1).nonzero().flatten().tolist() == [0]
    assert select_features(act, freq, trim=0.0, act_threshold=1.5).nonzero().flatten().tolist() == [
        0,
        1,
    ]
    with pytest.raises(ValueError, match="mode must be one of"):
        select_features(act, freq, mode="both")


def test_sta_direction_uses_selected_decoder_rows(tiny_sae_run):
    from interv.steer.sta import STA, STAHParams

    model, sae, _, _ = tiny_sae_run
    vector = STA(STAHParams(trim=0.5, chat_template=False), sae=sae).fit(model, PAIRS)
    features, values = vector.meta["features"], vector.meta["values"]
    assert features and len(features) == len(values)
    manual = torch.tensor(values) @ sae.W_dec.float()[features]
    torch.testing.assert_close(vector.directions[sae.hook_name], manual, atol=1e-4, rtol=1e-4)
    assert float(manual.norm()) == pytest.approx(vector.meta["caa_norm"], rel=1e-4)
    graph = STA.graph(vector, model, sae=sae, scale=2.0)
    ids = torch.tensor([model.tokenizer("Item 1: good")["input_ids"]])
    plain = Graph([])
    from interv.graph import Add

    added = Graph([Add(sae.hook_name, 2.0 * vector.directions[sae.hook_name])])
    torch.testing.assert_close(
        model.forward(ids, graph=graph), model.forward(ids, graph=added), atol=1e-4, rtol=1e-4
    )
    assert not torch.allclose(model.forward(ids, graph=graph), model.forward(ids, graph=plain))


def test_sta_refuses_wrong_layer_and_no_features(tiny_sae_run):
    from interv.steer.sta import STA, STAHParams

    model, sae, _, _ = tiny_sae_run
    with pytest.raises(SAEError, match="`layer` is 0, but SAE"):
        STA(STAHParams(layer=0), sae=sae).fit(model, PAIRS)
    same = [ContrastPair("good day", "good day", prompt="x")] * 2
    with pytest.raises(ValueError, match="Every pair has identical sides; STA"):
        STA(STAHParams(chat_template=False), sae=sae).fit(model, same)
    with pytest.raises(SAEError, match="STA selected no feature"):  # no feature clears the threshold
        STA(STAHParams(chat_template=False, act_threshold=1e9), sae=sae).fit(model, PAIRS)
    with pytest.raises(ValueError, match="`trim` must be in"):
        STAHParams(trim=1.0)


def test_sae_feature_method_and_saved_graph(tiny_sae_run, tmp_path):
    from interv.sae.steering import feature_graph

    from interv.steer.sae_feature import SAEFeatureHParams, SAEFeatureSteer

    model, sae, _, folder = tiny_sae_run
    hp = SAEFeatureHParams(sae=str(folder), features=[2, 5], strengths=[3.0, -1.0])
    vector = SAEFeatureSteer(hp).fit(model)
    torch.testing.assert_close(
        vector.directions[sae.hook_name], 3.0 * sae.W_dec[2].float() - sae.W_dec[5].float()
    )
    steerer = SAEFeatureSteer(hp)
    graph = feature_graph(steerer.fit(model), steerer.sae)
    graph.save(tmp_path / "g")
    loaded = Graph.load(tmp_path / "g", saes={steerer.sae.id: folder})
    with pytest.raises(SAEError, match="was made with SAE"):
        feature_graph(vector, sae)  # another SAE object than the vector's
    ids = torch.tensor([model.tokenizer("the cat")["input_ids"]])
    torch.testing.assert_close(model.forward(ids, graph=loaded), model.forward(ids, graph=graph))
    with pytest.raises(SAEError, match="out of range"):
        SAEFeatureSteer(SAEFeatureHParams(sae=str(folder), features=[99], strengths=[1.0])).fit(
            model
        )
    with pytest.raises(ValueError, match="one strength per feature"):
        SAEFeatureHParams(features=[1, 2], strengths=[1.0])


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


def test_contrast_statistics_balance_the_answer_letters():
    """A/B items: one feature only tracks the letter (fires on whichever side holds A), one
    the behaviour. With three A-matching items and one B-matching, the plain means credit the
    letter feature; balanced means (the default) give it zero and keep the behaviour one."""
    from interv.sae.steering import ContrastStats

    groups = torch.tensor([True, True, True, False])
    letter_a = groups.float()  # fires on the side that holds letter A
    pos = torch.stack([letter_a, torch.ones(4)], 1)  # feature 1: the behaviour, positive side
    neg = torch.stack([1 - letter_a, torch.zeros(4)], 1)
    acts = torch.zeros(4, 3)
    plain = ContrastStats(acts, acts, pos, neg)
    balanced = ContrastStats(acts, acts, pos, neg, groups)
    assert plain.act_diff.tolist() == [0.5, 1.0] and plain.freq_diff.tolist() == [0.5, 1.0]
    assert balanced.act_diff.tolist() == [0.0, 1.0] and balanced.freq_diff.tolist() == [0.0, 1.0]
