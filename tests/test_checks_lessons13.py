"""The temporary exercise checks of lessons 01–03 accept the reference and reject typical mistakes."""

import pytest
import torch

from lessons_lib.autodiff import jacobian_trace, projected_jacobian
from lessons_lib.checks import check_gaussian_score, check_ism_loss, check_ssm_loss


def test_gaussian_score_check(capsys):
    check_gaussian_score(lambda x, m, c: -(x - m) @ torch.linalg.inv(c))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="sign"):
        check_gaussian_score(lambda x, m, c: (x - m) @ torch.linalg.inv(c))
    with pytest.raises(AssertionError, match="inverse"):
        check_gaussian_score(lambda x, m, c: -(x - m) @ c)


def test_ism_loss_check(capsys):
    def ism(f, x):
        trace, s = jacobian_trace(f, x, return_output=True)
        return (trace + 0.5 * (s**2).sum(-1)).mean()

    check_ism_loss(ism)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="½"):
        check_ism_loss(lambda f, x: ism(f, x) + 0.5 * (f(x) ** 2).sum(-1).mean())


def test_ssm_loss_check(capsys):
    def ssm(f, x, v, half=0.5):
        x = x.clone().requires_grad_(True)
        s = f(x)
        terms = [projected_jacobian(s, x, vi) + half * (vi * s).sum(-1) ** 2 for vi in v]
        return torch.stack(terms).mean()

    check_ssm_loss(ssm)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="½"):
        check_ssm_loss(lambda f, x, v: ssm(f, x, v, half=1.0))


def test_checks_report_an_unattempted_stub(capsys):
    def stub(*args):
        raise NotImplementedError

    for check in (check_gaussian_score, check_ism_loss, check_ssm_loss):
        check(stub)
    assert capsys.readouterr().out.count("not attempted yet") == 3
