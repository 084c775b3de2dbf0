#!/usr/bin/env bash
# Reproduce the default model tenku-world-tiny (shipped in src/tenku/assets/tenku-world-tiny) with one
# command:  scripts/train_default_model.sh [RUN_DIR]
#
# Every stage resumes: rerun the same command after an interruption and it continues where it stopped
# (complete world shards and latent parts are skipped, training resumes from its latest checkpoint).
# The numbers below are the ones the shipped model was trained with (see MODEL_CARD.md). The DiT and
# VAE presets schedule more steps than were run; the run stops at *_STOP and exports at that step.
#
# Environment:  NPROC (processes per stage, default 2; torchrun gloo on CPU, nccl on CUDA)
#               DEVICE (cpu or cuda; default cuda when available)   THREADS (torch threads/process, 1)
#               CLIPS, VAE_STOP, VAE2_STEPS, VAE3_STEPS, LATENT_CLIPS, DIT1_STOP, DIT_STEPS, DIT_STOP,
#               ASSET (where the pipeline folder goes)
set -euo pipefail

RUN=${1:-runs/world-tiny}
NPROC=${NPROC:-2}
THREADS=${THREADS:-1}
CLIPS=${CLIPS:-4000}
VAE_STOP=${VAE_STOP:-1500}
VAE2_STEPS=${VAE2_STEPS:-800}
VAE3_STEPS=${VAE3_STEPS:-2000}
LATENT_CLIPS=${LATENT_CLIPS:-2000}
DIT1_STOP=${DIT1_STOP:-2500}
DIT_STEPS=${DIT_STEPS:-6000}
DIT_STOP=${DIT_STOP:-5500}
ASSET=${ASSET:-src/tenku/assets/tenku-world-tiny}
DEV=()
if [[ -n "${DEVICE:-}" ]]; then DEV=(--device "$DEVICE"); fi
export OMP_NUM_THREADS=$THREADS
TRAIN=(python -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m tenku train)
mkdir -p "$RUN"

echo "== 1/6 world clips: $CLIPS train + 200 held-out (test_id)"
tenku world make --out "$RUN/world" --clips "$CLIPS" --workers "$NPROC" --no-progress
tenku world make --out "$RUN/world_test_id" --clips 200 --split test_id --workers "$NPROC" --no-progress

echo "== 2/6 VAE (4x8x8, 16 channels): three phases"
# phase 1: from scratch, the preset's schedule (lr 1.5e-4, 3000 steps planned, 5x32x32 crops), stopped at $VAE_STOP
"${TRAIN[@]}" vae --data "$RUN/world" --out "$RUN/vae" --preset world-tiny --resume "${DEV[@]}" \
    --set eval_data="$RUN/world_test_id" --stop-at "$VAE_STOP" --no-progress
# phase 2: from phase 1's EMA weights, 9-frame crops (two latent steps in time) and extra loss weight on
# coloured and moving pixels, so the small objects are kept, not only the floors
"${TRAIN[@]}" vae --data "$RUN/world" --out "$RUN/vae2" --preset world-tiny --init "$RUN/vae" --resume "${DEV[@]}" \
    --steps "$VAE2_STEPS" --set warmup_steps=20 --set crop_frames=9 --set color_weight=4 --set motion_weight=4 \
    --set ckpt_every=50 --set eval_data="$RUN/world_test_id" --no-progress
# phase 3: the decoder alone (the encoder, and so the latent space the DiT learns, stays phase 2's),
# lr 1e-4 over $VAE3_STEPS steps with the same crops and pixel weights
"${TRAIN[@]}" vae --data "$RUN/world" --out "$RUN/vae3" --preset world-tiny --init "$RUN/vae2" --resume "${DEV[@]}" \
    --steps "$VAE3_STEPS" --set warmup_steps=20 --set lr=1e-4 --set crop_frames=9 --set color_weight=4 \
    --set motion_weight=4 --set train_encoder=false --set ckpt_every=100 --set eval_data="$RUN/world_test_id" \
    --no-progress

echo "== 3/6 latent cache ($LATENT_CLIPS clips, $NPROC processes)"
for ((i = 0; i < NPROC; i++)); do
    tenku data cache-latents --vae "$RUN/vae2/export/vae" --data "$RUN/world" --out "$RUN/latents" \
        --limit "$LATENT_CLIPS" --shard "$i/$NPROC" --no-progress &
done
wait

echo "== 4/6 DiT (+ byte text encoder) to step $DIT_STOP"
# phase 1: the preset's schedule (3000 steps planned), stopped at $DIT1_STOP
"${TRAIN[@]}" dit --data "$RUN/latents" --out "$RUN/dit" --preset world-tiny --resume "${DEV[@]}" \
    --stop-at "$DIT1_STOP" --no-progress
# phase 2: the same run resumed with a $DIT_STEPS-step schedule (the learning rate rises back to about
# 0.65 of its peak and decays again), stopped at $DIT_STOP
"${TRAIN[@]}" dit --data "$RUN/latents" --out "$RUN/dit" --preset world-tiny --resume "${DEV[@]}" \
    --steps "$DIT_STEPS" --stop-at "$DIT_STOP" --no-progress
tenku train dit --data "$RUN/latents" --out "$RUN/dit" --preset world-tiny --resume "${DEV[@]}" \
    --steps "$DIT_STOP" --no-progress

echo "== 5/6 export the EMA weights with the phase-3 VAE as the pipeline folder $ASSET (float16)"
tenku train export "$RUN/dit" --vae "$RUN/vae3/export/vae" --out "$ASSET" --fp16

echo "== 6/6 evaluate"
tenku eval --model "$ASSET" --suite default --out "$RUN/eval" --no-progress
