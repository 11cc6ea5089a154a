import math

import pytest
import torch

from lessons_lib.stats import mean_and_sd, mean_and_se
from lessons_lib.utils import get_device, seed_everything


def test_mean_and_se_and_mean_and_sd():
    values = torch.tensor([1.0, 2.0, 3.0, 6.0])
    sd = values.std().item()
    assert mean_and_sd(values) == pytest.approx((3.0, sd))
    assert mean_and_se(values) == pytest.approx((3.0, sd / 2))
    assert mean_and_sd([0.5, 1.5]) == pytest.approx((1.0, math.sqrt(0.5)))
    with pytest.raises(ValueError, match="at least 2"):
        mean_and_se([1.0])


def test_seed_everything_and_device():
    g = seed_everything(3)
    a = torch.randn(3), torch.randn(3, generator=g)
    g = seed_everything(3)
    b = torch.randn(3), torch.randn(3, generator=g)
    torch.testing.assert_close(a, b)
    assert get_device() == torch.device("cpu") and get_device("cpu").type == "cpu"
    assert get_device("auto").type in {"cpu", "cuda"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        get_device("banana")
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
