"""The AxBench-style judge: scores and their aggregate by hand, the local judge on real
sentences, a local chat model's expected rating, and the OpenAI client against a local server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import interv
from interv.errors import ConfigError, DataError, ProvisionError
from interv.eval.judge import (
    Judgement,
    LocalJudge,
    ModelJudge,
    OpenAIJudge,
    calibrated,
    judge_from,
    repetition_factor,
    summarise,
)
from interv.eval.judge_clients import ChatClient, RatingScorer, parse_rating
from tests.tiny import build_tiny

INSTRUCTION = "Give me some tips for planning a camping trip."
ON_CONCEPT = (
    "Rent a tent, sleeping bags and a camping stove from an outdoor rental shop: renting "
    "the equipment for a weekend costs far less than buying it."
)
OFF_CONCEPT = (
    "Check the weather forecast, pack layers of warm clothing, and tell a friend where you "
    "plan to hike and when you will be back."
)
CONCEPT = "references to rental services and associated equipment"


def test_harmonic_mean_and_summarise_by_hand():
    a, b = Judgement(2.0, 1.0, 1.0), Judgement(0.0, 2.0, 2.0)
    assert a.harmonic_mean == pytest.approx(3 / (1 / 2 + 1 + 1))  # 1.2
    assert b.harmonic_mean == 0.0  # any 0 sinks the aggregate
    got = summarise([a, b])
    assert got == pytest.approx(
        {"concept": 1.0, "instruction": 1.5, "fluency": 1.5, "harmonic_mean": 0.6}
    )
    with pytest.raises(DataError):
        summarise([])


def test_calibration_clamps_and_reads_either_direction():
    assert calibrated(0.5, (0.0, 1.0)) == 1.0
    assert calibrated(-1.0, (0.0, 1.0)) == 0.0 and calibrated(3.0, (0.0, 1.0)) == 2.0
    assert calibrated(4.0, (6.0, 2.0)) == 1.0  # lower is better (an NLL)
    assert repetition_factor("the the the the") == pytest.approx(1 / 3)
    assert repetition_factor("a fine day") == 1.0 and repetition_factor("word") == 1.0


@pytest.fixture(scope="module")
def long_tiny(tmp_path_factory):
    """A tiny Llama whose context holds a judge's rubric prompt (the shared ones hold 128)."""
    return interv.load(build_tiny("llama", tmp_path_factory.mktemp("judge"), n_ctx=1024))


def test_local_judge_ranks_on_concept_and_on_instruction_above_off(long_tiny):
    judge = LocalJudge(long_tiny)  # a random reference: fluency is not checked here
    instructions = [INSTRUCTION] * 3
    unrelated = "The stock market fell sharply on Tuesday after the bank raised interest rates."
    on, off, away = judge.judge(instructions, [ON_CONCEPT, OFF_CONCEPT, unrelated], CONCEPT)
    assert on.concept > off.concept
    assert off.instruction > away.instruction
    empty = judge.judge([INSTRUCTION], ["  "], CONCEPT)[0]
    assert empty == Judgement(0.0, 0.0, 0.0)
    for score in (on, off, away):
        assert all(0.0 <= s <= 2.0 for s in (score.concept, score.instruction, score.fluency))


def test_local_judge_needs_a_reference_for_fluency():
    with pytest.raises(ConfigError, match="reference model"):
        LocalJudge().judge([INSTRUCTION], [OFF_CONCEPT], CONCEPT)
    with pytest.raises(ConfigError, match="one instruction per response"):
        LocalJudge().judge([INSTRUCTION, INSTRUCTION], [OFF_CONCEPT], CONCEPT)


@pytest.mark.real_model
def test_local_judge_calls_a_loop_less_fluent_than_prose(real_models):
    judge = judge_from("local", real_models())
    loop = "the the the the the the the the the the the the"
    fluent, looped = judge.judge([INSTRUCTION] * 2, [OFF_CONCEPT, loop], CONCEPT)
    assert fluent.fluency > 1.0 > looped.fluency
    assert fluent.harmonic_mean > looped.harmonic_mean


def test_model_judge_scores_in_range_and_deterministic(long_tiny):
    model = long_tiny
    judge = ModelJudge(model, batch_size=2)
    responses = [ON_CONCEPT, OFF_CONCEPT, "the the the"]
    first = judge.judge([INSTRUCTION] * 3, responses, CONCEPT)
    again = judge.judge([INSTRUCTION] * 3, responses, CONCEPT)
    assert first == again and len(first) == 3
    for score in first:
        assert all(0.0 <= s <= 2.0 for s in (score.concept, score.instruction, score.fluency))
    probs = RatingScorer(model).probabilities(["Rate this: fine.", "And this?"])
    assert probs.shape == (2, 3) and probs.sum(-1).tolist() == pytest.approx([1.0, 1.0])


def test_judge_from_specs(tiny_models):
    model = tiny_models("llama")
    assert isinstance(judge_from(None, model), LocalJudge)
    loaded = judge_from("model:tiny", loader=lambda name: model)
    assert isinstance(loaded, ModelJudge) and loaded.scorer.model is model
    with pytest.raises(ConfigError, match="loader"):
        judge_from("model:tiny")
    with pytest.raises(ConfigError, match="Unknown judge"):
        judge_from("gpt4")


def test_parse_rating():
    assert parse_rating("Relevant and clear.\nRating: [[2]]") == 2
    assert parse_rating("Rating: 1 (out of 2)") == 1
    assert parse_rating("I'd say 0.") == 0
    with pytest.raises(DataError, match="no rating"):
        parse_rating("It is 2.5 good")
    with pytest.raises(DataError, match="no rating"):
        parse_rating("Rating: [[7]]")


class _Server:
    """A local OpenAI-compatible endpoint: answers each POST with the next canned reply."""

    def __init__(self, replies: list[tuple[int, str]]):
        self.replies, self.requests = list(replies), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                status, content = outer.replies.pop(0) if outer.replies else (200, "[[1]]")
                payload = {"choices": [{"message": {"role": "assistant", "content": content}}]}
                data = json.dumps(payload if status == 200 else {"error": content}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made: list[_Server] = []

    def make(replies):
        made.append(_Server(replies))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_openai_judge_sends_the_rubric_and_parses_ratings(server, monkeypatch):
    endpoint = server([(200, "On topic. Rating: [[2]]"), (200, "Rating: [[1]]"), (200, "[[0]]")])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("INTERV_JUDGE_BASE_URL", endpoint.url)
    judge = judge_from("openai:judge-model")
    assert isinstance(judge, OpenAIJudge) and judge.name == "openai:judge-model"
    (score,) = judge.judge([INSTRUCTION], [ON_CONCEPT], CONCEPT)
    assert score == Judgement(2.0, 1.0, 0.0)
    assert len(endpoint.requests) == 3  # concept, instruction, fluency
    path, headers, body = endpoint.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert CONCEPT in message["content"] and ON_CONCEPT in message["content"]
    assert "Rating: [[X]]" in message["content"]
    assert INSTRUCTION in endpoint.requests[1][2]["messages"][0]["content"]


def test_openai_client_retries_then_fails_clearly(server):
    endpoint = server([(200, "no idea"), (200, "Rating: [[2]]")])
    client = ChatClient("m", api_key="k", base_url=endpoint.url, backoff=0.0)
    assert client.rate("Rate it.") == 2  # a reply without a rating is asked again
    endpoint = server([(200, "hmm"), (200, "still no rating")])
    client = ChatClient("m", api_key="k", base_url=endpoint.url, backoff=0.0)
    with pytest.raises(DataError, match="no rating"):
        client.rate("Rate it.")
    endpoint = server([(503, "busy"), (200, "[[1]]")])
    client = ChatClient("m", api_key="k", base_url=endpoint.url, backoff=0.0)
    assert client.rate("Rate it.") == 1 and len(endpoint.requests) == 2
    endpoint = server([(401, "bad key")])
    client = ChatClient("m", api_key="k", base_url=endpoint.url, backoff=0.0)
    with pytest.raises(ProvisionError, match="HTTP 401"):
        client.complete([{"role": "user", "content": "hi"}])


def test_openai_judge_without_a_key_is_a_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        judge_from("openai:gpt-4o-mini")
