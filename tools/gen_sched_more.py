#!/usr/bin/env python3
"""More scheduler trajectories, in the format of tools/gen_sched_extra.py:
- rescale_betas_zero_snr: DPM-Solver multistep, Euler, Euler ancestral and UniPC, which clamp the last
  alpha_bar to 2^-24 so the first sigma is finite, and Heun and LMS, whose diffusers classes have no
  such option and ignore the key when a config carries it;
- the names diffusers' constructors rename, as when a config moves from one class to another:
  DPM-Solver's solver_type bh1/bh2/logrho (midpoint) and algorithm_type deis (dpmsolver++), UniPC's
  solver_type midpoint/heun/logrho (bh2).
A case's config keeps the key or name as given (diffusers' own config shows the renamed value), to
check that diffuse reads it as diffusers does.

usage: python3 tools/gen_sched_more.py > tests/fixtures/sched_extra/more.json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from diffusers import (DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,  # noqa: E402
                       HeunDiscreteScheduler, LMSDiscreteScheduler, UniPCMultistepScheduler)
from gen_sched_extra import run  # noqa: E402


def main():
    zs = dict(num_train_timesteps=1000, rescale_betas_zero_snr=True, timestep_spacing="trailing",
              prediction_type="v_prediction")
    cases = [run(EulerDiscreteScheduler, zs, 10, case_id="euler|zero_snr|v"),
             run(EulerAncestralDiscreteScheduler, zs, 10, case_id="euler-a|zero_snr|v"),
             run(DPMSolverMultistepScheduler, zs, 10, case_id="dpm|zero_snr|v"),
             run(UniPCMultistepScheduler, zs, 10, case_id="unipc|zero_snr|v")]
    plain = {k: v for k, v in zs.items() if k != "rescale_betas_zero_snr"}
    for cls, name in ((HeunDiscreteScheduler, "heun"), (LMSDiscreteScheduler, "lms")):
        case = run(cls, plain, 8, case_id=f"{name}|zero_snr key ignored")
        case["config"]["rescale_betas_zero_snr"] = True
        cases.append(case)
    renamed = [(DPMSolverMultistepScheduler, "solver_type", "bh1"), (DPMSolverMultistepScheduler, "solver_type", "logrho"),
               (DPMSolverMultistepScheduler, "algorithm_type", "deis"), (UniPCMultistepScheduler, "solver_type", "heun"),
               (UniPCMultistepScheduler, "solver_type", "midpoint")]
    for cls, key, value in renamed:
        config = {"num_train_timesteps": 1000, key: value}
        if value == "deis":  # diffusers checks final_sigmas_type against the name before renaming it
            config["final_sigmas_type"] = "sigma_min"
        case = run(cls, config, 10, case_id=f"{cls.__name__}|{key} {value}")
        case["config"][key] = value
        cases.append(case)
    print(json.dumps({"format": "diffuse-sched-extra-v1", "cases": cases}))


if __name__ == "__main__":
    main()
