"""STA's feature selection and direction, and SAE-feature steering vectors and graphs."""

from __future__ import annotations

import pytest
import torch

from interv.contrast import ContrastPair
from interv.errors import SAEError
from interv.graph import Graph
from interv.steer.sta import select_features

PAIRS = [
    ContrastPair("good great happy lovely", "bad awful sad horrible", prompt=f"Item {i}:")
    for i in range(6)
]


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
    with pytest.raises(
        SAEError, match="STA selected no feature"
    ):  # no feature clears the threshold
        STA(STAHParams(chat_template=False, act_threshold=1e9), sae=sae).fit(model, PAIRS)
    with pytest.raises(ValueError, match="`trim` must be in"):
        STAHParams(trim=1.0)


def test_sae_feature_method_and_saved_graph(tiny_sae_run, tmp_path):
    from interv.steer.sae_feature import SAEFeatureHParams, SAEFeatureSteer, feature_graph

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


def test_contrast_statistics_balance_the_answer_letters():
    """A/B items: one feature only tracks the letter (fires on whichever side holds A), one
    the behaviour. With three A-matching items and one B-matching, the plain means credit the
    letter feature; balanced means (the default) give it zero and keep the behaviour one."""
    from interv.steer.sta import ContrastStats

    groups = torch.tensor([True, True, True, False])
    letter_a = groups.float()  # fires on the side that holds letter A
    pos = torch.stack([letter_a, torch.ones(4)], 1)  # feature 1: the behaviour, positive side
    neg = torch.stack([1 - letter_a, torch.zeros(4)], 1)
    acts = torch.zeros(4, 3)
    plain = ContrastStats(acts, acts, pos, neg)
    balanced = ContrastStats(acts, acts, pos, neg, groups)
    assert plain.act_diff.tolist() == [0.5, 1.0] and plain.freq_diff.tolist() == [0.5, 1.0]
    assert balanced.act_diff.tolist() == [0.0, 1.0] and balanced.freq_diff.tolist() == [0.0, 1.0]
