"""The sequence model: sampling with a key/value cache sees what one full pass sees."""

from __future__ import annotations

import json

import pytest
import torch

from cardworld.synthesizer import Synthesizer
from cardworld.synthesizer.model import ModelConfig, SequenceModel, rotate


def _model(rotary: bool) -> SequenceModel:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=50, n_fields=5, block_size=32, n_layer=2, n_head=2, n_embd=16, rotary=rotary
    )
    positions = torch.arange(config.block_size)
    return SequenceModel(config, field_of_pos=positions % 5, slot_of_pos=positions // 5).eval()


@pytest.mark.parametrize("rotary", [True, False])
def test_cached_steps_give_the_logits_of_one_full_pass(rotary):
    model = _model(rotary)
    tokens = torch.randint(0, 50, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(tokens)
        cache = model.new_cache(3, torch.device("cpu"))
        steps = [model(tokens[:, :6], 0, cache)]
        steps += [model(tokens[:, t : t + 1], t, cache) for t in range(6, 24)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_rotary_angles_turn_queries_and_keys_by_relative_position():
    # With rotary embeddings, attention scores depend on how far apart two positions are,
    # not where they are: shifting both by the same amount leaves q . k unchanged.
    model = _model(True)
    head = model.config.n_embd // model.config.n_head
    q, k = torch.randn(2, head, generator=torch.Generator().manual_seed(2))
    cos, sin = model.rotary_cos, model.rotary_sin

    def score(i: int, j: int) -> torch.Tensor:
        qi = rotate(q.view(1, 1, 1, head), (cos[i : i + 1], sin[i : i + 1]))
        kj = rotate(k.view(1, 1, 1, head), (cos[j : j + 1], sin[j : j + 1]))
        return (qi * kj).sum()

    torch.testing.assert_close(score(7, 3), score(20, 16))
    assert not torch.isclose(score(7, 3), score(7, 5))


def test_models_saved_before_rotary_embeddings_load_without_them(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    manifest = tmp_path / "model" / "synthesizer.json"
    saved = json.loads(manifest.read_text())
    assert saved["model"].pop("rotary") is True  # new models have them
    manifest.write_text(json.dumps(saved))
    old = Synthesizer.load(tmp_path / "model")
    assert old.model.config.rotary is False
    assert len(old.sample(3, seed=0)) > 0


def test_rotary_embeddings_change_what_the_model_computes():
    tokens = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert not torch.allclose(_model(True)(tokens), _model(False)(tokens))


def test_an_odd_head_size_fits_without_rotary_embeddings(table, tiny):
    # Rotary embeddings turn pairs of a head's features: a head of 9 has none to turn.
    synth = Synthesizer(**{**tiny, "n_embd": 36, "n_head": 4, "max_epochs": 1})
    synth.fit(table, group_by="acct_id", order_by="txn_index")
    assert synth.model.config.rotary is False
    assert len(synth.sample(2, seed=0)) > 0
