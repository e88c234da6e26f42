"""EnsembleNetwork: the members' softmax probabilities averaged (returned as a log so that softmax recovers them),
buildable from a MONAI config, loadable from an fp16 state dict (upcast to fp32), and exportable to ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from app.networks.ensemble import EnsembleNetwork
from app.networks.unet import ClassicUNet

TINY = (4, 8, 8, 16, 16, 4)


class Constant(nn.Module):
    """Stub member: the same logits at every pixel."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[2:])


def test_softmax_of_the_output_is_the_mean_of_the_members_probabilities():
    # member 1: p = softmax([0, log 3]) = (0.25, 0.75); member 2: p = (0.5, 0.5) -> mean (0.375, 0.625)
    net = EnsembleNetwork(members=[Constant([0.0, float(np.log(3.0))]), Constant([1.0, 1.0])])
    out = net(torch.zeros(2, 1, 3, 4))
    assert out.shape == (2, 2, 3, 4)
    probabilities = torch.softmax(out, dim=1)
    assert probabilities[0, :, 0, 0].tolist() == pytest.approx([0.375, 0.625])
    assert torch.exp(out).sum(dim=1).allclose(torch.ones(2, 3, 4))  # already normalised


def test_one_member_keeps_its_decisions():
    torch.manual_seed(0)
    member = ClassicUNet(2, 1, 2, features=TINY).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        alone = torch.softmax(member(x), 1)
        ensemble = torch.softmax(EnsembleNetwork(member, 1).eval()(x), 1)
    assert torch.allclose(alone, ensemble, atol=1e-6)


def test_members_are_independent_copies_and_arguments_are_checked():
    net = EnsembleNetwork(ClassicUNet(2, 1, 2, features=TINY), 3)
    assert len(net.members) == 3
    assert net.members[0].state_dict().keys() == net.members[2].state_dict().keys()
    assert {k.split(".")[1] for k in net.state_dict()} == {"0", "1", "2"}
    first = next(net.members[0].parameters())
    assert first is not next(net.members[1].parameters())
    with pytest.raises(ValueError, match="either member"):
        EnsembleNetwork()
    with pytest.raises(ValueError, match="n_members"):
        EnsembleNetwork(ClassicUNet(2, 1, 2, features=TINY), 0)


def test_config_builds_it_and_an_fp16_state_dict_is_upcast_at_load(tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser(
        {
            "network_def": {
                "_target_": "app.networks.ensemble.EnsembleNetwork",
                "member": {
                    "_target_": "app.networks.unet.ClassicUNet",
                    "spatial_dims": 2,
                    "in_channels": 1,
                    "out_channels": 2,
                    "features": list(TINY),
                },
                "n_members": 2,
            }
        }
    )
    net = parser.get_parsed_content("network_def")
    assert isinstance(net, EnsembleNetwork) and len(net.members) == 2
    torch.manual_seed(1)
    trained = [ClassicUNet(2, 1, 2, features=TINY) for _ in range(2)]
    fp16 = {
        f"members.{k}.{name}": value.half() if value.is_floating_point() else value
        for k, member in enumerate(trained)
        for name, value in member.state_dict().items()
    }
    torch.save(fp16, tmp_path / "model.pt")
    net.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True), strict=True)
    for name, value in net.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32, name
            assert torch.equal(value, fp16[name].float()), name


def test_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from app.inference.runtime.export import onnx_export

    torch.manual_seed(2)
    net = EnsembleNetwork(members=[ClassicUNet(2, 1, 2, features=TINY) for _ in range(2)]).eval()
    path = onnx_export(net, folder=tmp_path, weights_sha256="0" * 64, in_channels=1, spatial_shape=(64, 64))
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-4)
