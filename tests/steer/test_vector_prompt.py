"""vector_prompt: the with-prompt minus without-prompt activation difference, by hand; records
and plain inputs; EasyEdit2's records and keys through the workflow; bad records."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import names
from interv.steer.vector_prompt import VectorPrompt, VectorPromptHParams
from interv.steer.workflow import BaseVectorGenerator

HOOK = names.hook("resid_post", 1)


def by_hand(model, head: str, output: str) -> torch.Tensor:
    """Mean activation at HOOK over the output's tokens after ``head`` (its last token when
    there is no output)."""
    tok = model.tokenizer
    head_ids = tok(head)["input_ids"]
    ids = tok(f"{head} {output}")["input_ids"] if output else head_ids
    _, cache = model.run_with_cache(torch.tensor([ids]), [HOOK])
    start = len(head_ids) if output else len(head_ids) - 1
    return cache[HOOK][0, start:].mean(0)


def test_vector_is_the_mean_difference_over_the_output_tokens(tiny_models):
    model = tiny_models("llama")
    records = [{"input": "a cat", "output": "sat on the mat"}, "hello there"]
    hp = VectorPromptHParams(layers=[1], prompt="Be very happy.")
    vector = VectorPrompt(hp).fit(model, records)
    expected = (
        by_hand(model, "Be very happy. a cat", "sat on the mat")
        - by_hand(model, "a cat", "sat on the mat")
        + by_hand(model, "Be very happy. hello there", "")
        - by_hand(model, "hello there", "")
    ) / 2
    torch.testing.assert_close(vector.directions[HOOK], expected, atol=1e-5, rtol=1e-4)
    own = VectorPrompt(hp).fit(model, [{"input": "a cat", "prompt": "Be sad."}])
    alone = by_hand(model, "Be sad. a cat", "") - by_hand(model, "a cat", "")
    torch.testing.assert_close(own.directions[HOOK], alone, atol=1e-5, rtol=1e-4)
    assert vector.method == "vector_prompt" and vector.meta["n_records"] == 2


def test_bad_records_and_keys_are_clear_errors(tiny_models):
    model = tiny_models("llama")
    method = VectorPrompt(VectorPromptHParams(layers=[1]))
    with pytest.raises(ValueError, match="has no `input`"):
        method.fit(model, [{"output": "only an answer"}])
    with pytest.raises(ValueError, match="prompt is empty"):
        VectorPromptHParams(prompt=" ")
    with pytest.raises(ValueError, match=r"layer\(s\) \[9\] out of range"):
        VectorPrompt(VectorPromptHParams(layers=[9])).fit(model, ["hi"])


def test_easyedit2_method_file_generates_through_the_workflow(tiny_dirs, tmp_path):
    cfg = {
        "model_name_or_path": str(tiny_dirs["llama"]),
        "device": "cpu",
        "steer_train_hparam_paths": [
            {
                "alg_name": "vector_prompt",
                "layers": [1],
                "prompt": "Be very happy.",
                "use_chat_template": False,
                "generate_prompt_params": {},
            }
        ],
        "save_vectors": False,
    }
    records = [{"input": "a cat", "output": "sat on the mat"}, {"input": "hello there"}]
    vectors = BaseVectorGenerator(cfg).generate_vectors({"mine": records})
    assert vectors["mine"]["vector_prompt"].hooks == [HOOK]
    bad = {**cfg["steer_train_hparam_paths"][0], "generate_prompt_params": {"max_new_tokens": 9}}
    with pytest.raises(ValueError, match="write it in `prompt`"):
        BaseVectorGenerator({**cfg, "steer_train_hparam_paths": [bad]}).generate_vectors(
            {"mine": records}
        )
