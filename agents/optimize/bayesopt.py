"""Bayesian optimisation of a face's controls with BoTorch.

A ``SingleTaskGP`` (inputs normalised to the control box, outcomes standardised) is fitted
to what has been evaluated, and ``qLogExpectedImprovement`` over the best evaluation so
far picks the next batch of q controls, with the skin's measured strain as an outcome
constraint (strain at most the profile's ceiling) where the backend reports it.

What the GP models depends on the target:

* an expression target (a library name, a control vector, a picture): the face's
  residual features (achieved minus desired landmarks), compressed to their principal
  components. The acquisition scores Monte-Carlo samples of those components by the
  norm of the residual they imply. Modelling the face's response rather than one
  number lets each evaluation teach the optimiser where every landmark went (BO of a
  composite function, Astudillo & Frazier 2019), which is what makes 16 to 30 controls
  tractable in tens of evaluations;
* an emotion objective (:mod:`emotion_objective`): the recogniser's seven
  log-probabilities, the acquisition scoring samples by the sought emotion's log-odds;
* another scorer: the score itself.

The first ``n_init`` evaluations are the start point and a scrambled Sobol design. A
warm start (``start_side``, e.g. from an inverse model's proposal) draws the design, and
the first trust region, from a box of that side around the start point instead: the
search refines a good guess rather than surveying the whole box.
Every random choice is seeded by the run's seed and the number of evaluations so far,
so the next batch depends on the evaluations alone (``stateless``).

Speed: the optimiser's own time is what a user waits for (an evaluation on the twin takes
about 70 ms). Each fit starts from the previous fit's hyperparameters and stops after
``WARM_FIT_ITERS`` L-BFGS iterations (from scratch, the fit ran ~2,000 iterations and was
80% of a proposal at 60 evaluations); the acquisition scores its raw samples in one
call and runs ``ACQ_ITERS`` iterations on all restarts as one batch. A proposal at 60
evaluations went from 11 s to about 0.9 s on one core here.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from botorch.models.utils.gpytorch_modules import (
    get_covar_module_with_dim_scaled_prior,
    get_gaussian_likelihood_with_lognormal_prior,
)
from botorch.optim import optimize_acqf
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.fit import fit_gpytorch_mll_scipy
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood
from scipy.stats import qmc

from facetwin.agents.optimize.search import Search
from facetwin.envs.expression import residual_weights
from facetwin.threads import torch_single_threaded

EXPLAINED_VARIANCE = 0.999
MAX_COMPONENTS = 24
TR_START, TR_MIN, TR_MAX, TR_PATIENCE = 0.8, 1 / 64, 1.6, 3
FIT_ITERS, WARM_FIT_ITERS = 200, 25  # L-BFGS iterations: a fit from scratch, a warm one
ACQ_ITERS = 40  # L-BFGS iterations of the acquisition
WARM_INIT = 4  # evaluations before the GP of a warm start: its guess and 3 around it


class BayesOpt(Search):
    """BoTorch's Bayesian optimisation behind the ask/tell interface (see the module's
    docstring).

    Args:
        low, high: the control box searched.
        x0: where the search starts (its first evaluation).
        seed: the seed of its Sobol design and acquisition restarts.
        n_init: Sobol points before the GP proposes (by default from the dimension).
        strain_limit: the skin-strain outcome constraint; none when None.
        restarts, raw_samples, mc_samples: the acquisition optimiser's effort.
        batch: controls proposed at a time (q).
        start_side: a local search about ``x0``, in a box this fraction of each range.
    """

    name = "bo"
    stateless = True

    def __init__(self, low, high, x0, seed: int, n_init: int | None = None,
                 strain_limit: float | None = None, restarts: int = 4,
                 raw_samples: int = 256, mc_samples: int = 64, batch: int = 2,
                 start_side: float | None = None):
        super().__init__(low, high, x0, seed)
        d = len(self.low)
        if start_side is not None and not 0 < start_side <= 1:
            raise ValueError(f"start_side is a fraction of each control's range in (0, 1], "
                             f"got {start_side!r}")
        self.start_side = start_side
        self.n_init = n_init or (WARM_INIT if start_side else min(10, max(4, d // 2)))
        self.strain_limit = strain_limit
        self.batch = batch
        self.restarts, self.raw_samples, self.mc_samples = restarts, raw_samples, mc_samples
        m = int(np.ceil(np.log2(self.n_init)))  # Sobol points come in powers of 2
        sobol = qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:self.n_init - 1]
        if start_side:
            sobol = self.to_box(self.x0) + start_side * (sobol - 0.5)
        self.design = np.vstack([self.x0, self.from_box(sobol)])
        self.records: list[dict] = []
        self._told: list[int] = []  # evaluations told after each batch
        self._fitted = 0  # evaluations the last GP fit saw
        self._hypers: dict | None = None

    def tell(self, X: np.ndarray, records: list[dict]) -> None:
        super().tell(X, records)
        self.records += records
        self._told.append(len(self.X))

    def ask(self, n: int) -> np.ndarray:
        done = len(self.X)
        if done < self.n_init:
            return self.design[done:min(self.n_init, done + n)]
        with warnings.catch_warnings(), torch_single_threaded():
            warnings.simplefilter("ignore")  # a capped fit stops unconverged by design
            # A resumed run told the batches of its log without asking: fit the GP at
            # each of them, so the hyperparameters carried forward are an
            # uninterrupted run's.
            for size in self._told:
                if max(self._fitted, self.n_init - 1) < size < done:
                    self._fit(size)
            return self._propose(*self._fit(done), n)

    def _fit(self, size: int):
        """The GP of the first ``size`` evaluations, its hyperparameters started from the
        previous fit's; with the objective and constraints to hand to the acquisition."""
        X = torch.tensor(self.X[:size], dtype=torch.float64)
        Y, objective = self._outcomes(size)
        constraints = None
        strain = [r.get("strain") for r in self.records[:size]]
        if self.strain_limit is not None and None not in strain:
            Y = torch.cat([Y, torch.tensor(strain, dtype=torch.float64)[:, None]], dim=1)
            constraints = [lambda s: s[..., -1] - self.strain_limit]
        bounds = torch.tensor(np.stack([self.low, self.high]), dtype=torch.float64)
        model, self._hypers = _shared_kernel_gp(X, Y, bounds, self._hypers)
        self._fitted = size
        # The twin is deterministic: the best evaluation so far is known, not estimated
        # (expected improvement over it, not noisy EI over a posterior of the baseline).
        value = objective(Y)
        if constraints:
            feasible = Y[:, -1] <= self.strain_limit
            value = value[feasible] if feasible.any() else value
        return model, objective, constraints, value.max()

    def _propose(self, model, objective, constraints, best, n) -> np.ndarray:
        done = len(self.X)
        torch.manual_seed(self.seed * 1_000_003 + done)
        posterior = _LeanPosterior(model, torch.tensor(self.X, dtype=torch.float64))
        acq = qLogExpectedImprovement(
            posterior, best_f=best, objective=objective, constraints=constraints,
            sampler=SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=done))
        centre = self.X[int(np.argmax(self.scores))]
        half = 0.5 * self.trust_region() * (self.high - self.low)
        region = torch.tensor(np.stack([np.maximum(centre - half, self.low),
                                        np.minimum(centre + half, self.high)]))
        candidates, _ = optimize_acqf(
            acq, bounds=region, q=n, num_restarts=self.restarts, raw_samples=self.raw_samples,
            # one call scores all raw samples, one batch holds all restarts
            options={"batch_limit": self.restarts, "init_batch_limit": self.raw_samples,
                     "maxiter": ACQ_ITERS})
        return candidates.detach().numpy()

    def trust_region(self) -> float:
        """Side of the box around the best controls where the next batch is sought, as
        a fraction of each control's range (TuRBO, Eriksson et al. 2019): it doubles
        after 3 batches in a row that improve on the best, halves after as many that do
        not. A function of the scores so far, so a resumed run agrees."""
        side, wins, losses = self.start_side or TR_START, 0, 0
        best = self.scores[:self.n_init].max()
        for start in range(self.n_init, len(self.scores), self.batch):
            batch_best = self.scores[start:start + self.batch].max()
            improved = batch_best > best + 1e-3 * abs(best)
            best = max(best, batch_best)
            wins, losses = (wins + 1, 0) if improved else (0, losses + 1)
            if wins == TR_PATIENCE:
                side, wins = min(2 * side, TR_MAX), 0
            elif losses == TR_PATIENCE:
                side, losses = max(side / 2, TR_MIN), 0
        return side

    def _outcomes(self, size: int) -> tuple[torch.Tensor, GenericMCObjective]:
        """The GP's training outcomes of the first ``size`` evaluations and the objective
        that turns samples of them into a score to maximise."""
        records = self.records[:size]
        if all("emotions" in r for r in records):
            return _emotion_outcomes(records)
        if any("residual" not in r for r in records):
            y = torch.tensor(self.scores[:size], dtype=torch.float64)[:, None]
            return y, GenericMCObjective(lambda s, X=None: s[..., 0])
        W = np.array([r["residual"] for r in records]) * residual_weights()
        mean = W.mean(axis=0)
        _, sv, vt = np.linalg.svd(W - mean, full_matrices=False)
        share = np.cumsum(sv ** 2) / max((sv ** 2).sum(), 1e-300)
        k = int(min(np.searchsorted(share, EXPLAINED_VARIANCE) + 1, MAX_COMPONENTS,
                    len(W) - 1))
        basis = vt[:k]
        Z = torch.tensor((W - mean) @ basis.T, dtype=torch.float64)
        # The residual is mean + basis.T @ z; its norm within the subspace is |z + c|
        # (the mean's part outside the subspace is the same for every x).
        c = torch.tensor(basis @ mean, dtype=torch.float64)

        def squared_residual(s, X=None):
            return -((s[..., :k] + c) ** 2).sum(dim=-1)

        return Z, GenericMCObjective(squared_residual)


def _emotion_outcomes(records: list[dict]) -> tuple[torch.Tensor, GenericMCObjective]:
    """A recogniser's seven log-probabilities as the GP's outcomes, and the log-odds of
    the sought emotion computed from samples of them: each evaluation tells the
    optimiser what the face looked like to the recogniser, not just one number."""
    from facetwin.agents.emotion_objective import CLIP

    k = records[0]["emotion"]
    logp = np.log(np.clip(np.array([r["emotions"] for r in records]), CLIP, 1.0))
    others = [j for j in range(logp.shape[1]) if j != k]

    def log_odds(s, X=None):
        return s[..., k] - torch.logsumexp(s[..., others], dim=-1)

    return torch.tensor(logp, dtype=torch.float64), GenericMCObjective(log_odds)


def _shared_kernel_gp(X: torch.Tensor, Y: torch.Tensor, bounds: torch.Tensor,
                      start: dict | None) -> tuple[SingleTaskGP, dict]:
    """A SingleTaskGP over all outcomes with one kernel, fitted jointly: the components
    of one face's response share its smoothness, and one fit instead of one per
    outcome is what keeps a batch proposal within seconds.

    ``start`` (the previous fit's hyperparameters) starts the fit where the last one
    ended: one batch more data moves them little, so a short fit suffices.
    Returns the model and its hyperparameters."""
    model = SingleTaskGP(X, Y, input_transform=Normalize(X.shape[1], bounds=bounds),
                         outcome_transform=Standardize(Y.shape[1]),
                         covar_module=get_covar_module_with_dim_scaled_prior(
                             ard_num_dims=X.shape[1]),
                         # a noise level per outcome: minor components are rougher
                         likelihood=get_gaussian_likelihood_with_lognormal_prior(
                             torch.Size([Y.shape[1]]) if Y.shape[1] > 1 else None))
    lengthscale = model.covar_module.raw_lengthscale
    noise = model.likelihood.noise_covar.raw_noise
    if start is not None:
        with torch.no_grad():
            lengthscale.copy_(start["lengthscale"])
            noise.fill_(start["noise"])
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    mll.train()
    # An explicit closure makes BoTorch fit the shared hyperparameters jointly.
    params = {n: p for n, p in mll.named_parameters() if p.requires_grad}
    fit_gpytorch_mll_scipy(mll, closure=get_loss_closure_with_grads(mll, params),
                           options={"maxiter": FIT_ITERS if start is None else WARM_FIT_ITERS})
    mll.eval()
    hypers = {"lengthscale": lengthscale.detach().clone(),
              "noise": float(noise.detach().median())}
    return model, hypers


class _LeanPosterior(Model):
    """The fitted shared-kernel GP's posterior in a few dense torch operations.

    The acquisition asks for the posterior at a few hundred batches of q points; through
    GPyTorch's lazy operators each call cost ~12 ms here, nearly all of it Python
    overhead, and was most of a proposal. With one RBF kernel for every output only the
    noise differs between outputs: one Cholesky factor per output, computed once.
    Equal to ``gp.posterior`` (``tests/test_agents.py``).
    """

    def __init__(self, gp: SingleTaskGP, train_X: torch.Tensor):
        super().__init__()
        bounds = gp.input_transform.bounds
        self._low, self._width = bounds[0], bounds[1] - bounds[0]
        self._lengthscale = gp.covar_module.lengthscale.detach().reshape(-1)
        # The raw inputs: a GP's own train_inputs are normalised or not depending on
        # its mode and batch shape.
        X = self._scaled(train_X)
        y = gp.train_targets.detach().reshape(-1, X.shape[0])  # (outputs, n), standardised
        m = y.shape[0]
        noise = gp.likelihood.noise.detach().reshape(-1).expand(m)
        K = _rbf(X, X)
        self._L = torch.linalg.cholesky(K + noise[:, None, None] * torch.eye(len(X),
                                                                          dtype=K.dtype))
        mean = gp.mean_module.constant.detach().reshape(-1).expand(m)
        self._alpha = torch.cholesky_solve((y - mean[:, None])[..., None], self._L)[..., 0]
        self._mean = mean
        self._X = X
        self._mu = gp.outcome_transform.means.detach().reshape(-1)
        self._sd = gp.outcome_transform.stdvs.detach().reshape(-1)

    @property
    def num_outputs(self) -> int:
        return len(self._mean)

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def _scaled(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self._low) / self._width / self._lengthscale

    def posterior(self, X: torch.Tensor, output_indices=None, observation_noise=False,
                  posterior_transform=None, **kwargs) -> GPyTorchPosterior:
        Z = self._scaled(X)  # (..., q, d)
        Ks = _rbf(Z, self._X)  # (..., q, n)
        mean = self._mean + Ks @ self._alpha.T  # (..., q, m)
        V = torch.linalg.solve_triangular(
            self._L, Ks.unsqueeze(-3).transpose(-1, -2), upper=False)  # (..., m, n, q)
        cov = _rbf(Z, Z).unsqueeze(-3) - V.transpose(-1, -2) @ V  # (..., m, q, q)
        cov = cov * self._sd[:, None, None] ** 2 + 1e-9 * torch.eye(Z.shape[-2],
                                                                    dtype=Z.dtype)
        mean = mean * self._sd + self._mu
        mvn = MultivariateNormal(mean.transpose(-1, -2), cov)
        return GPyTorchPosterior(MultitaskMultivariateNormal.from_batch_mvn(mvn, task_dim=-1))


def _rbf(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """exp(-|a - b|^2 / 2) of inputs already divided by the lengthscales."""
    d2 = (A.unsqueeze(-2) - B.unsqueeze(-3)).pow(2).sum(-1)
    return torch.exp(-0.5 * d2)
