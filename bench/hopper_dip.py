"""Why do the initialized policies lose ground on Hopper? (reports/hopper-dip/): two candidate
fixes, each applied to every arm alike.

    python bench/hopper_dip.py --workers 2        # trains what is missing, then the report

In the headline study (reports/headline/Hopper-ppo.md) weit and distill start near the expert
(weit's step-0 return ~0.92 of it at 64x3) and lose ground once the retention weight reaches zero
(50k steps): at 64x3 weit's final score is 0.650, distill's 0.803. Two leads:
- Step size. The tenth session's diagnostic (reports/headline/README.md) read the runs' approx-KL:
  after 60k steps PPO moves the initialized policies 4-6x as far per update as scratch (0.042 and
  0.031 vs 0.007; clip fraction 0.29 and 0.25 vs 0.073). SB3's target_kl stops a rollout's
  epochs once a minibatch's approx-KL exceeds 1.5 x target_kl.
- The objective. The learner runs rl-zoo3's Hopper values (configs/ppo.yaml: gamma 0.999, GAE
  lambda 0.99, log_std -2), which left scratch standing still here; the Hopper expert was trained
  with other values (configs/experts.yaml: gamma 0.99, lambda 0.95, log_std -0.5, 2048-step
  rollouts). So the initialized critic predicts returns discounted at 0.99 for a learner that
  discounts at 0.999, and PPO improves the policy for a horizon the expert was not trained for.
  A KL limit bounds the steps; it cannot change where they lead.
Arms (Hopper, size 64x3, 5 seeds, the headline's protocol and shared settings: 200k steps, 10
episodes every 10k steps):
- scratch, weit, distill: configs/ppo.yaml as is (the headline's arms, retrained here so that every
  arm of the comparison comes from the same code and the same study).
- scratch_kl, weit_kl, distill_kl: the same with target_kl 0.01 (stop above 0.015); 0.01 sits above
  scratch's mean approx-KL (0.007) and below the initialized arms' after retention.
- scratch_xhp, weit_xhp, distill_xhp: the expert's own PPO values (configs/experts.yaml) instead of
  configs/ppo.yaml's, log_std included.
Primary (declared when the study started with the KL arms alone, as bench/kl_limit.py of commit ad0bd8c, study
kl-limit; the folder was renamed when the second lead was added, before any report): weit_kl vs
weit, AUC. Secondary: weit_kl, scratch_kl, weit_xhp, scratch_xhp against every other arm (Holm).
The study resumes from reports/hopper-dip/runs/ like every compare study.
"""

from __future__ import annotations

from ablation import SHARED, run_arms, study_args  # the controlled settings; one compare call, run from this venv

STUDY = "hopper-dip"
KL = "hyperparam_overrides={target_kl: 0.01}"
EXPERT_HP = (
    "hyperparam_overrides={n_steps: 2048, batch_size: 64, n_epochs: 10, learning_rate: 3.0e-4, gamma: 0.99, "
    "gae_lambda: 0.95, clip_range: 0.2, ent_coef: 0.0, max_grad_norm: 0.5, vf_coef: 0.5, "
    "policy_kwargs: {log_std_init: -0.5}}"
)
ARMS = {
    "scratch": "",
    "weit": "",
    "distill": "",
    "scratch_kl": f"init=scratch,{KL}",
    "weit_kl": f"init=weit,{KL}",
    "distill_kl": f"init=distill,{KL}",
    "scratch_xhp": f"init=scratch,{EXPERT_HP}",
    "weit_xhp": f"init=weit,{EXPERT_HP}",
    "distill_xhp": f"init=distill,{EXPERT_HP}",
}
PROTOCOL = ["--steps", "200000", "--eval-freq", "10000", "--eval-episodes", "10", "--sizes", "64x3", "--seeds", "5"]


def main() -> None:
    args = study_args(__doc__, "Hopper")
    run_arms(
        args.env,
        "ppo",
        STUDY,
        ARMS,
        [*PROTOCOL, "--set", *SHARED],
        "weit_kl:weit",
        ["weit_kl", "scratch_kl", "weit_xhp", "scratch_xhp"],
        args.workers,
    )


if __name__ == "__main__":
    main()
