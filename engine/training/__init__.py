"""LoRA training, one module per part:

- `service`: `POST /train-lora` behind the route: the job, the thumbnail, the saved file.
- `defaults`: the defaults table and how a request's form becomes a `TrainConfig`.
- `config`: `TrainConfig` and `Prior`, the plain values a run trains with.
- `targets`: which layers a LoRA trains.
- `trainer`: the PEFT training loop on the live pipeline.
- `data`: images and captions in the model's terms.
- `prior`: prior preservation by self-distillation.
- `probe`: the before/after loss yardstick.

Only `trainer`, `data`, `prior` and `probe` import torch; the web layer never imports them."""
