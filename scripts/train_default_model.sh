#!/usr/bin/env bash
# Reproduce the default model tenku-world-tiny (shipped in src/tenku/assets/tenku-world-tiny) with one
# command:  scripts/train_default_model.sh [RUN_DIR]
#
# Every stage resumes: rerun the same command after an interruption and it continues where it stopped
# (complete world shards and latent parts are skipped, training resumes from its latest checkpoint).
# The recipe is the preset world-patch (see tenku/train/presets.py and MODEL_CARD.md):
#   a patch VAE whose encoder is the principal components of the world's 4-frame x 8x8 pixel blocks
#   (96 channels, fitted at the start of the VAE run and then held) and whose decoder (the transposed
#   map plus a causal refiner) is trained with extra weight on coloured (object) pixels; then a DiT over
#   its latent grid, one token per position (320 per clip), each latent channel scaled by its
#   component's deviation to the power WHITEN_POWER (0.5; scripts/rescale_vae.py), with word tokens,
#   timestep shift 3, a fifth of the timesteps in [0.95, 1) and a fifth uniform, extra loss weight on
#   the latent positions of objects, and few given-frame samples.
# The encoder is fixed from the VAE run's first step, so the latent cache may be written (and the DiT
# trained) while the decoder still trains: pass PARALLEL=1 to do so (two processes, one per core).
#
# Environment:  NPROC (processes per training stage, default 1; torchrun gloo on CPU, nccl on CUDA)
#               DEVICE (cpu or cuda; default cuda when available)   THREADS (torch threads/process, 1)
#               CLIPS, VAE_STEPS, DIT_STEPS, DIT_STOP, ASSET (where the pipeline folder goes), PARALLEL,
#               WHITEN_POWER (0 keeps the whitened code, 1 gives each channel its component's spread)
#               DIT_TIME_LIMIT (seconds: the DiT's steps are fitted to it, at most DIT_STEPS; see
#               `tenku train dit --time-limit`; a fixed hour of a rented GPU, say)
set -euo pipefail

RUN=${1:-runs/world-tiny}
NPROC=${NPROC:-1}
THREADS=${THREADS:-1}
CLIPS=${CLIPS:-2000}
VAE_STEPS=${VAE_STEPS:-1500}
DIT_STEPS=${DIT_STEPS:-6000}
DIT_STOP=${DIT_STOP:-$DIT_STEPS}
PARALLEL=${PARALLEL:-0}
WHITEN_POWER=${WHITEN_POWER:-0.5}
ASSET=${ASSET:-src/tenku/assets/tenku-world-tiny}
DEV=()
TIME=()
if [[ -n "${DIT_TIME_LIMIT:-}" ]]; then TIME=(--time-limit "$DIT_TIME_LIMIT"); fi
if [[ -n "${DEVICE:-}" ]]; then DEV=(--device "$DEVICE"); fi
export OMP_NUM_THREADS=$THREADS
if [[ "$NPROC" -gt 1 ]]; then
    TRAIN=(python -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m tenku train)
else
    TRAIN=(tenku train)
fi
mkdir -p "$RUN"

echo "== 1/5 world clips: $CLIPS train + 200 held-out (test_id)"
tenku world make --out "$RUN/world" --clips "$CLIPS" --workers 2 --no-progress
tenku world make --out "$RUN/world_test_id" --clips 200 --split test_id --workers 2 --no-progress

vae() {
    "${TRAIN[@]}" vae --data "$RUN/world" --out "$RUN/vae" --preset world-patch --resume "${DEV[@]}" \
        --steps "$VAE_STEPS" --set train_encoder=false --set eval_data="$RUN/world_test_id" --no-progress "$@"
}
rescale() {  # $1: a VAE folder, $2: its copy with the channels scaled (further arguments: rescale_vae.py's)
    python "$(dirname "$0")/rescale_vae.py" "$1" "$2" --power "$WHITEN_POWER" "${@:3}"
}
scaled_vae() {  # the finished VAE with the code the latent cache was written with
    if [[ -d "$RUN/vae_encoder_scaled" ]]; then
        rescale "$RUN/vae/export/vae" "$RUN/vae_scaled" --match "$RUN/vae_encoder_scaled"
    else
        rescale "$RUN/vae/export/vae" "$RUN/vae_scaled"
    fi
}
cache() {  # $1: the VAE folder whose (fixed) encoder writes the latents
    tenku data cache-latents --vae "$1" --data "$RUN/world" --out "$RUN/latents" --no-progress
}
dit() {
    "${TRAIN[@]}" dit --data "$RUN/latents" --out "$RUN/dit" --preset world-patch --resume "${DEV[@]}" \
        --steps "$DIT_STEPS" --stop-at "$DIT_STOP" "${TIME[@]}" --no-progress
}

echo "== 2/5 patch VAE: encoder = block principal components (held), decoder trained for $VAE_STEPS steps"
echo "== 3/5 latent cache; 4/5 DiT + word-token text encoder to step $DIT_STOP of $DIT_STEPS"
if [[ "$PARALLEL" == 1 && ! -f "$RUN/vae/export/vae/config.json" ]]; then
    vae --stop-at 1                                        # fits the encoder, checkpoints step 1
    tenku train export "$RUN/vae" --out "$RUN/vae_encoder"     # that encoder, its latents normalised
    rescale "$RUN/vae_encoder" "$RUN/vae_encoder_scaled"
    cache "$RUN/vae_encoder_scaled"
    vae & vae_pid=$!
    dit
    wait "$vae_pid"
    scaled_vae
else
    vae
    scaled_vae
    cache "$RUN/vae_scaled"
    dit
fi

echo "== 5/5 export the EMA weights with the trained decoder as the pipeline folder $ASSET (float16), evaluate"
tenku train export "$RUN/dit" --vae "$RUN/vae_scaled" --out "$ASSET" --fp16
for seed in 0 1 2; do
    tenku eval --model "$ASSET" --suite default --seed "$seed" --out "$RUN/eval-seed$seed" --no-progress
done
