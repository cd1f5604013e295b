"""`/v1/models` through the official SDK: the agents are the models."""

import openai
import pytest


def test_models_list_has_the_agents(steward):
    client = steward.client()
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert "architect" in ids, ids
    assert len(ids) == len(set(ids)), f"duplicate model ids: {ids}"
    for m in models:
        assert m.object == "model", m
        assert isinstance(m.owned_by, str) and m.owned_by, m
        assert isinstance(m.created, int) and m.created >= 0, m


def test_models_retrieve(steward):
    client = steward.client()
    model = client.models.retrieve("architect")
    assert model.id == "architect"
    assert model.object == "model"
    assert model.owned_by
    listed = {m.id: m for m in client.models.list()}
    assert model.to_dict() == listed["architect"].to_dict()


def test_models_retrieve_unknown_is_not_found(steward):
    client = steward.client()
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-agent")
    e = info.value
    assert e.status_code == 404
    assert e.code == "model_not_found", e.body
    assert isinstance(e.body, dict) and "architect" in e.body["message"], e.body
