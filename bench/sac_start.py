"""Does SAC keep an initialized policy's start? (reports/sac-start/): the settings the
headline's SAC part will apply to every arm alike, chosen by measurement.

    python bench/sac_start.py --workers 1        # trains what is missing, then the report

Why: on Walker2d (reports/headline/README.md, one seed each) a `weit` SAC policy holds its
start through rl-zoo3's 10k random warm-up steps and loses it within the first 2k updates.
The first critic losses are ~70x scratch's: with the entropy weight starting at SB3's 1.0, the
soft targets of a near-deterministic initialized actor move by -log pi per step, and the actor
is then pushed towards entropy. Arms (HalfCheetah, size small, 3 seeds, 30k steps, 10 episodes
every 2.5k steps; the default weit recipe):
- scratch, weit: configs/sac.yaml as is (rl-zoo3: entropy weight auto-tuned from 1.0).
- scratch_ent, weit_ent: the entropy weight auto-tuned from 0.2 (the HalfCheetah SAC expert's
  final value, 0.21) for both, so that the setting is not a privilege of the initialized arm.
- weit_ent_warm: as weit_ent, and the actor frozen for the first 20k steps (critic warm-up:
  10k updates on the random warm-up data and the policy's own transitions).
- scratch_ent_own, weit_ent_own_warm: SAC's first 10k steps act uniformly at random (rl-zoo3's
  learning_starts), so an initialized critic first meets actions its actor never takes. Here
  updates start after 1k steps instead, and weit's actor is frozen for the first 10k steps: its
  critic adapts on the policy's own transitions. Scratch gets the same learning_starts.
The warm arms' first runs (seeds 0-1, tenth session) were deleted and retrained: with the actor
frozen, SAC's entropy weight kept tuning towards a target entropy the actor could not reach (0.2
to 3.5 over 20k steps) and drove the released actor to maximum entropy (7,200 to about 0 at
release). CriticWarmup now holds the entropy weight too (agents/aids.py).
The study resumes from reports/sac-start/runs/ like every compare study.
"""

from __future__ import annotations

from ablation import run_arms, study_args  # bench/ablation.py: one compare call, run from this venv

STUDY = "sac-start"
ENT = "hyperparam_overrides={ent_coef: auto_0.2}"
ENT_OWN = "hyperparam_overrides={ent_coef: auto_0.2, learning_starts: 1000}"
ARMS = {
    "scratch": "",
    "weit": "",
    "scratch_ent": f"init=scratch,{ENT}",
    "weit_ent": f"init=weit,{ENT}",
    "weit_ent_warm": f"init=weit,{ENT},warmup_steps=20000",
    "scratch_ent_own": f"init=scratch,{ENT_OWN}",
    "weit_ent_own_warm": f"init=weit,{ENT_OWN},warmup_steps=10000",
}
PROTOCOL = ["--steps", "30000", "--eval-freq", "2500", "--eval-episodes", "10", "--sizes", "small", "--seeds", "3"]


def main() -> None:
    args = study_args(__doc__, "HalfCheetah")
    run_arms(
        args.env,
        "sac",
        STUDY,
        ARMS,
        PROTOCOL,
        "weit:scratch",
        ["weit", "weit_ent", "weit_ent_warm", "weit_ent_own_warm"],
        args.workers,
    )


if __name__ == "__main__":
    main()
