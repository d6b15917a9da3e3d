"""Simulated generalization evals: robosuite (Lift, Stack, PickPlaceCan, Door) and Meta-World MT10
tasks behind the shared Observation vocabulary, scripted experts, demo collection to RLDS,
perturbation factors, parallel chunked rollouts and reports.

Python API (heavy imports happen inside these modules, not here)::

    from sim_eval.envs import make_env                 # env.reset(seed) / step(action) / observe(render=...)
    from sim_eval.experts import make_expert           # scripted expert Policy for a task
    from sim_eval.collect import collect               # successful expert demos -> RLDS directory
    from sim_eval.evaluate import evaluate             # policy x tasks x factors -> report dict (+ files)
    from sim_eval.factors import FACTORS, FactorSetting
"""
