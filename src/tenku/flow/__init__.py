"""Rectified flow as pure functions: timestep schedules and shift, loss, Euler/Heun samplers, guidance."""

from tenku.flow.guidance import cfg_denoiser, concat_conditions
from tenku.flow.loss import add_noise, flow_matching_loss
from tenku.flow.samplers import SAMPLERS, sample_euler, sample_heun
from tenku.flow.schedule import (
    compute_shift,
    linear_schedule,
    logit_normal_timesteps,
    shift_timesteps,
    shifted_schedule,
    timestep_tail_mass,
    training_timesteps,
    truncate_schedule,
)

__all__ = [
    "SAMPLERS", "add_noise", "cfg_denoiser", "compute_shift", "concat_conditions", "flow_matching_loss",
    "linear_schedule", "logit_normal_timesteps", "sample_euler", "sample_heun", "shift_timesteps",
    "shifted_schedule", "timestep_tail_mass", "training_timesteps", "truncate_schedule",
]
