"""Per-sample bias gradients from the BiasBank against a per-example autograd loop (float64, rel ≤ 1e-6)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model
from transformers.pytorch_utils import Conv1D

from dpaudit.errors import ModelError, UnsupportedModuleError
from dpaudit.trainers.bank import BiasBank
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.rules import BIAS_RULES, register_bias_rule



pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


class ConvNet(nn.Module):
    """Conv1d/Conv2d/Conv3d, GroupNorm, LayerNorm, Linear and HF Conv1D in one net."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(3, 4, 3)
        self.c2 = nn.Conv2d(4, 6, 3, padding=1)
        self.gn = nn.GroupNorm(2, 6)
        self.c3 = nn.Conv3d(6, 5, 1)
        self.ln = nn.LayerNorm(5)
        self.lin = nn.Linear(5, 7)
        self.hf = Conv1D(3, 7)

    def forward(self, x):  # x: (B, 3, L)
        h = torch.tanh(self.c1(x))                       # (B, 4, L-2)
        h = h.unsqueeze(-1).expand(-1, -1, -1, 3)        # (B, 4, L-2, 3)
        h = torch.tanh(self.gn(self.c2(h)))              # (B, 6, L-2, 3)
        h = torch.tanh(self.c3(h.unsqueeze(-1)))         # (B, 5, L-2, 3, 1)
        h = h.flatten(2).transpose(1, 2)                 # (B, S, 5)
        h = torch.tanh(self.lin(self.ln(h)))
        return self.hf(h)                                # (B, S, 3)


def _per_example_reference(net_factory, bank_rows, x, model_index, loss_fn):
    """Loop over examples; model k = a fresh vanilla net with biases from bank row k."""
    refs = []
    for i in range(x.shape[0]):
        net = net_factory()
        k = int(model_index[i])
        grads = {}
        params = {}
        for name, mod in net.named_modules():
            key = name.replace(".", "__")
            if key in bank_rows:
                with torch.no_grad():
                    mod.bias.copy_(bank_rows[key][k])
                params[key] = mod.bias
        for p in net.parameters():
            p.requires_grad_(False)
        for p in params.values():
            p.requires_grad_(True)
        loss_fn(net(x[i : i + 1]), i).backward()
        for key, p in params.items():
            grads[key] = p.grad.clone()
        refs.append(grads)
    return refs


@pytest.mark.parametrize("batch", [1, 5])
def test_every_rule_matches_per_example_loop(batch):
    torch.manual_seed(0)
    base = ConvNet()
    net = copy.deepcopy(base)
    bank = BiasBank(net, num_models=3)
    with torch.no_grad():
        for t in bank.tables.values():
            t.add_(torch.randn_like(t))  # rows differ
    rows = {k: v.detach().clone() for k, v in bank.tables.items()}
    x = torch.randn(batch, 3, 6)
    m = torch.randint(0, 3, (batch,))
    targets = torch.randn(batch, 12, 3)
    loss_fn = lambda out, i: (out * targets[i]).sum() + out.square().sum()  # noqa: E731
    with bank.use(m):
        out = net(x)
    sum(loss_fn(out[i : i + 1], i) for i in range(batch)).backward()
    refs = _per_example_reference(lambda: copy.deepcopy(base), rows, x, m, loss_fn)
    assert {type(mod) for mod in net.modules()} >= {nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.GroupNorm, nn.LayerNorm,
                                                    nn.Linear, Conv1D}
    for slot in bank.slots:
        key = slot.name.replace(".", "__")
        for i in range(batch):
            torch.testing.assert_close(slot.per_sample[i], refs[i][key], rtol=1e-6, atol=1e-12)
    # squared norms: the sum over all tables
    expected = torch.stack([sum(r[k].square().sum() for k in r) for r in refs])
    torch.testing.assert_close(bank.sqnorm[0], expected, rtol=1e-6, atol=1e-12)
    # the tables receive no autograd gradient: no non-private reduction runs beside the per-sample path
    assert all(t.grad is None for t in bank.tables.values())


def test_empty_batch():
    net = ConvNet()
    bank = BiasBank(net, num_models=2)
    m = torch.zeros(0, dtype=torch.long)
    with bank.use(m):
        out = net(torch.randn(0, 3, 6))
    out.sum().backward()
    assert all(s.per_sample is None or s.per_sample.shape[0] == 0 for s in bank.slots)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_banked_classifier_matches_loop_on_transformers(family):
    torch.manual_seed(1)
    if family == "bert":
        cfg = BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                         vocab_size=50, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        make = lambda: BertModel(cfg)  # noqa: E731
    else:
        cfg = GPT2Config(n_embd=16, n_layer=2, n_head=2, vocab_size=50, resid_pdrop=0.0, embd_pdrop=0.0,
                         attn_pdrop=0.0)
        make = lambda: GPT2Model(cfg)  # noqa: E731
    torch.manual_seed(2)
    base = make().eval()
    clf = BankedClassifier.from_backbone(copy.deepcopy(base), num_models=2, num_labels=3)
    with torch.no_grad():
        for s in clf.slots:
            s.param.add_(0.1 * torch.randn_like(s.param))
    b, t = 4, 6
    ids = torch.randint(0, 50, (b, t))
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 4:] = 0
    m = torch.tensor([0, 1, 1, 0])
    y = torch.tensor([0, 2, 1, 2])
    nn.functional.cross_entropy(clf(ids, mask, m), y, reduction="sum").backward()
    state = clf.trainable_state()
    for i in range(b):
        k = int(m[i])
        ref = copy.deepcopy(base)
        for p in ref.parameters():
            p.requires_grad_(False)
        biases = {}
        for name, mod in ref.named_modules():
            if name in state and not name.startswith("pooler"):
                mod.bias = nn.Parameter(state[name][k].clone().view_as(mod.bias))
                biases[name] = mod.bias
        w = state["head.weight"][k].clone().requires_grad_(True)
        hb = state["head.bias"][k].clone().requires_grad_(True)
        hidden = ref(input_ids=ids[i : i + 1], attention_mask=mask[i : i + 1]).last_hidden_state
        mk = mask[i : i + 1].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mk).sum(1) / mk.sum(1)
        nn.functional.cross_entropy(pooled @ w.T + hb, y[i : i + 1], reduction="sum").backward()
        for s in clf.slots:
            expected = {"head.weight": w.grad, "head.bias": hb.grad}.get(s.name)
            if expected is None:
                expected = biases[s.name].grad
            torch.testing.assert_close(s.per_sample[i], expected, rtol=1e-6, atol=1e-10)


def test_pooler_excluded_and_frozen():
    cfg = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=50)
    clf = BankedClassifier.from_backbone(BertModel(cfg), num_models=1, num_labels=2)
    names = [s.name for s in clf.slots]
    assert not any(n.startswith("pooler") for n in names)
    assert all(not p.requires_grad for p in clf.backbone.parameters())
    assert clf.backbone.pooler.dense.bias is not None  # kept as it was


def test_model_without_biases_is_refused_unless_add():
    net = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False))
    with pytest.raises(ModelError, match="--add-biases"):
        BiasBank(copy.deepcopy(net), num_models=1)
    bank = BiasBank(copy.deepcopy(net), num_models=2, add_missing_biases=True)
    assert [s.name for s in bank.slots] == ["0", "2"]
    assert all(float(t.detach().abs().sum()) == 0.0 for t in bank.tables.values())


def test_unsupported_module_is_named():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return x + self.bias

    net = nn.Sequential(nn.Linear(3, 3), Odd())
    with pytest.raises(UnsupportedModuleError, match="module '1' \\(Odd\\)"):
        BiasBank(net, num_models=1)


def test_duplicate_rule_registration_needs_force():
    with pytest.raises(ValueError, match="already registered"):
        register_bias_rule(nn.Linear, channel_dim=-1)
    assert nn.Linear in BIAS_RULES
