"""YAML configuration shipped with weit_rl (installed as weit_rl.configs)."""
