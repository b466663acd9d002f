"""Does a KL limit keep the initialized policies' lead on Hopper? (reports/kl-limit/)

    python bench/kl_limit.py --workers 2        # trains what is missing, then the report

Why: in the headline study (reports/headline/Hopper-ppo.md) weit and distill start near the
expert (step-0 weit ~0.92 of it at 64x3) and lose ground once the retention weight reaches zero
(50k steps): at 64x3 weit's final score is 0.650, distill's 0.803. The tenth session's
diagnostic (reports/headline/README.md) read the runs' approx-KL: after 60k steps PPO moves the
initialized policies 4-6x as far per update as scratch (0.042 and 0.031 vs 0.007, clip fraction
0.29 and 0.25 vs 0.073). SB3's target_kl stops a rollout's epochs once the approx-KL of a
minibatch exceeds 1.5 x target_kl. Arms (Hopper, size 64x3, 5 seeds, the headline's protocol
and shared settings: 200k steps, 10 episodes every 10k steps):
- scratch, weit, distill: configs/ppo.yaml as is (the headline's arms, retrained here so that
  every arm of the comparison comes from the same code and the same run of the study).
- scratch_kl, weit_kl, distill_kl: the same with target_kl 0.01 (stop above 0.015), every arm
  alike, so the limit is not a privilege of the initialized arms; 0.01 sits above scratch's mean
  approx-KL (0.007) and below the initialized arms' after retention.
Primary: weit_kl vs weit (AUC); secondary: weit_kl and scratch_kl against every other arm.
The study resumes from reports/kl-limit/runs/ like every compare study.
"""

from __future__ import annotations

import argparse

from ablation import SHARED, run_command  # the controlled settings; print, then run from this venv

STUDY = "kl-limit"
KL = "hyperparam_overrides={target_kl: 0.01}"
ARMS = {"scratch": "", "weit": "", "distill": "",
        "scratch_kl": f"init=scratch,{KL}", "weit_kl": f"init=weit,{KL}", "distill_kl": f"init=distill,{KL}"}
PROTOCOL = ["--steps", "200000", "--eval-freq", "10000", "--eval-episodes", "10", "--sizes", "64x3", "--seeds", "5"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Hopper")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    flags = [f for name, over in ARMS.items() if over for f in ("--arm", f"{name}:{over}")]
    run_command(["weit-rl", "compare", "--env", args.env, "--algo", "ppo", "--study", STUDY, "--profile", "full",
                 *PROTOCOL, "--set", *SHARED, *flags, "--arms", ",".join(ARMS), "--primary", "weit_kl:weit",
                 "--candidates", "weit_kl,scratch_kl", "--workers", str(args.workers)])


if __name__ == "__main__":
    main()
