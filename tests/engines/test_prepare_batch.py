"""PrepareBatchWithWeight: image -> inputs, cat(label, weight) -> targets (the loss's (B, 2, *spatial) contract)."""

from __future__ import annotations

import pytest
import torch
from monai.data import DataLoader, MetaTensor
from monai.engines import SupervisedTrainer
from torch import nn

from app.engines.training.prepare_batch import PrepareBatchWithWeight
from app.losses.weighted_ce_dice import WeightedCEDiceLoss


def batch(shape=(2, 1, 6, 7)):
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(shape, generator=g),
        "label": torch.randint(0, 3, shape, generator=g, dtype=torch.int64),
        "weight": torch.rand(shape, generator=g, dtype=torch.float64) * 10,
    }


@pytest.mark.parametrize("shape", [(2, 1, 6, 7), (1, 1, 4, 5, 3)])
def test_targets_are_label_then_weight(shape):
    data = batch(shape)
    inputs, targets = PrepareBatchWithWeight()(data)
    assert inputs is data["image"] or torch.equal(inputs, data["image"])
    assert targets.shape == (shape[0], 2, *shape[2:])
    assert targets.dtype == torch.float32
    torch.testing.assert_close(targets[:, :1], data["label"].float())
    torch.testing.assert_close(targets[:, 1:], data["weight"].float())


def test_custom_keys_and_device():
    data = batch()
    renamed = {"img": data["image"], "seg": data["label"], "w": data["weight"], "extra": "ignored"}
    inputs, targets = PrepareBatchWithWeight("img", "seg", "w")(
        renamed, torch.device("cpu"), non_blocking=False
    )
    assert inputs.device.type == "cpu" and targets.device.type == "cpu"
    torch.testing.assert_close(targets[:, 0], data["label"][:, 0].float())
    with pytest.raises(KeyError):
        PrepareBatchWithWeight()(renamed)


def test_meta_tensors_are_accepted():
    data = batch()
    data = {k: MetaTensor(v) for k, v in data.items()}
    inputs, targets = PrepareBatchWithWeight()(data)
    assert targets.shape == (2, 2, 6, 7)
    torch.testing.assert_close(targets[:, 1].as_tensor(), data["weight"][:, 0].float().as_tensor())


def test_feeds_the_weighted_loss_in_a_supervised_trainer():
    """One epoch of MONAI's SupervisedTrainer: the loss receives the weight map through the targets."""
    torch.manual_seed(0)
    data = [
        {
            "image": torch.randn(1, 8, 8),
            "label": (torch.rand(1, 8, 8) > 0.5).long(),
            "weight": torch.rand(1, 8, 8) + 0.5,
        }
        for _ in range(4)
    ]
    net = nn.Conv2d(1, 2, 3, padding=1)
    seen = []
    loss_fn = WeightedCEDiceLoss()

    def loss_function(y_pred, y):
        seen.append(y.detach().clone())
        return loss_fn(y_pred, y)

    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=DataLoader(data, batch_size=2),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        loss_function=loss_function,
        prepare_batch=PrepareBatchWithWeight(),
    )
    trainer.run()
    assert trainer.state.iteration == 2 and len(seen) == 2
    assert seen[0].shape == (2, 2, 8, 8)
    torch.testing.assert_close(seen[1][:, 1], torch.stack([d["weight"][0] for d in data[2:]]))
    assert all(torch.isfinite(torch.as_tensor(o["loss"])) for o in trainer.state.output)
