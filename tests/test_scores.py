"""One reader for every model's score: the critic, image metadata (phase 1) and vision (phase 2)."""

import pytest
from standins import use_llm
from standins.images import ImageServers
from standins.openai import OpenAIStandin

import images
import llm
import writer

ARTICLE = {"title": "Chase Sapphire Preferred bonus jumps to 100,000 points", "tldr": "A limited-time offer."}


@pytest.mark.parametrize("written", [8, "8", 8.0, "8/10", "score: 8", " 8 / 10 ", "Score=8"])
def test_every_way_models_write_a_score_reads_as_the_number(written):
    assert llm.parse_score(written) == 8.0


@pytest.mark.parametrize("written, read", [(0, 1.0), (-3, 1.0), (11, 10.0), ("42/10", 10.0), (7.5, 7.5)])
def test_scores_are_clamped_to_one_to_ten(written, read):
    assert llm.parse_score(written) == read


@pytest.mark.parametrize("written", [None, True, "", "great", "eight", [8], {"value": 8}, float("nan")])
def test_a_reply_without_a_score_is_refused(written):
    with pytest.raises(ValueError, match="no numeric score"):
        llm.parse_score(written)


def test_critic_phase_one_and_vision_read_the_same_shapes():
    assert writer.parse_critique('{"score": "score: 8", "issues": []}')["score"] == 8.0
    assert images.parse_scores('{"scores": [{"id": 1, "score": "8/10"}, {"id": 2, "score": "7"}]}') == {
        "1": 8.0,
        "2": 7.0,
    }
    assert images.parse_vision('{"score": "8", "reason": "the card itself"}') == (8.0, "the card itself")


def test_a_vision_score_sent_as_text_still_picks_the_image(config):
    with OpenAIStandin() as model, ImageServers() as servers:
        use_llm(config, model)
        servers.configure(config)
        model.overrides["score_image"] = '{"score": "8", "reason": "shows the card"}'
        model.overrides["score_image_metadata"] = '{"scores": [{"id": 1, "score": "9/10"}]}'
        result = images.find_image(config, llm.Client(config), ARTICLE)
    assert result["fields"]["image_url"].endswith("/img/u1.jpg")
    assert result["candidates"][0]["text_score"] == 9.0
