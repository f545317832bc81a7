import torch

from harness import Config, parts
from harness.checkpoint import load_checkpoint, read_config, save_checkpoint


def test_a_checkpoint_round_trips_weights_and_config(tmp_path):
    cfg = Config(d_model=32, n_heads=4, n_layers=2, d_vocab=50, n_ctx=16)
    torch.manual_seed(0)
    model = parts.GPT2(cfg)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter)
    path = save_checkpoint(model, tmp_path / "model.safetensors", steps="3")
    assert read_config(path) == cfg
    loaded = load_checkpoint(path)
    tokens = torch.randint(0, cfg.d_vocab, (2, 7), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded(tokens), model(tokens))
    assert not loaded.training
